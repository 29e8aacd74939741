/** `imgbuild validate <spec>`: schema and semantic checks, no file of the context is read. */
import type { Command } from 'commander';
import { SpecError } from '../../errors.js';
import { plural } from '../../plan/render.js';
import { reportingJson } from '../exit-codes.js';
import { withVarOption, type SpecFlags } from '../options.js';

export function registerValidate(program: Command): void {
  withVarOption(program.command('validate').argument('<spec>', 'the image spec (image.yaml)'))
    .description('check a spec against the schema and the rules of the spec language, without reading its context (plan does); exit 0 valid, 2 invalid')
    .option('--json', 'print the result as one JSON object: {"type":"valid",...} or the error event of apply --json')
    .action(async (file: string, flags: SpecFlags & { json?: boolean }) => {
      await reportingJson(flags.json, async () => {
        const [{ diagnose }, { parseSpecSource }, { readSpecFile }] = await Promise.all([import('../../spec/load.js'), import('../../spec/source.js'), import('../../spec/spec-inputs.js')]);
        // The same words for a missing spec as plan and apply.
        const text = await readSpecFile(file);
        const src = parseSpecSource(file, text);
        const { diagnostics, value } = diagnose(src, { vars: flags.var, env: process.env });
        if (diagnostics.length > 0) throw new SpecError(diagnostics, { text });
        const layers = (value as { layers: unknown[] }).layers.length;
        const out = flags.json ? JSON.stringify({ type: 'valid', file, layers }) : `${file}: valid (${plural(layers, 'layer')})`;
        process.stdout.write(`${out}\n`);
      });
    });
}
