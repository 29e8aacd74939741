/** `imgbuild validate <spec>`: schema and semantic checks, no file of the context is read. */
import type { Command } from 'commander';
import { readFile } from 'node:fs/promises';
import { SpecError, usageError } from '../../errors.js';
import { withVarOption, type SpecFlags } from '../options.js';

export function registerValidate(program: Command): void {
  withVarOption(program.command('validate').argument('<spec>', 'the image spec (image.yaml)'))
    .description('check a spec against the schema and the rules of the spec language, without reading its context (plan does); exit 0 valid, 2 invalid')
    .action(async (file: string, flags: SpecFlags) => {
      const text = await readFile(file, 'utf8').catch(() => {
        throw usageError(`spec file ${file} cannot be read`, 'pass the path of an image.yaml');
      });
      const [{ diagnose }, { parseSpecSource }] = await Promise.all([import('../../spec/load.js'), import('../../spec/source.js')]);
      const src = parseSpecSource(file, text);
      const { diagnostics, value } = diagnose(src, { vars: flags.var, env: process.env });
      if (diagnostics.length > 0) throw new SpecError(diagnostics, { text });
      const layers = (value as { layers: unknown[] }).layers.length;
      process.stdout.write(`${file}: valid (${layers} layer${layers === 1 ? '' : 's'})\n`);
    });
}
