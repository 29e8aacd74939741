/** `imgbuild validate <spec>`: schema and semantic checks, no file of the context is read. */
import type { Command } from 'commander';
import { readFile } from 'node:fs/promises';
import { SpecError, usageError } from '../../errors.js';
import { reportingJson } from '../exit-codes.js';
import { withVarOption, type SpecFlags } from '../options.js';

export function registerValidate(program: Command): void {
  withVarOption(program.command('validate').argument('<spec>', 'the image spec (image.yaml)'))
    .description('check a spec against the schema and the rules of the spec language, without reading its context (plan does); exit 0 valid, 2 invalid')
    .option('--json', 'print the result as one JSON object: {"type":"valid",...} or the error event of apply --json')
    .action(async (file: string, flags: SpecFlags & { json?: boolean }) => {
      await reportingJson(flags.json, async () => {
        const text = await readFile(file, 'utf8').catch(() => {
          throw usageError(`spec file ${file} cannot be read`, 'pass the path of an image.yaml');
        });
        const [{ diagnose }, { parseSpecSource }] = await Promise.all([import('../../spec/load.js'), import('../../spec/source.js')]);
        const src = parseSpecSource(file, text);
        const { diagnostics, value } = diagnose(src, { vars: flags.var, env: process.env });
        if (diagnostics.length > 0) throw new SpecError(diagnostics, { text });
        const layers = (value as { layers: unknown[] }).layers.length;
        const out = flags.json ? JSON.stringify({ type: 'valid', file, layers }) : `${file}: valid (${layers} layer${layers === 1 ? '' : 's'})`;
        process.stdout.write(`${out}\n`);
      });
    });
}
