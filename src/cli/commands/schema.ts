/** `imgbuild schema`: print the JSON Schema of the spec language (for editors and CI). */
import { Option, type Command } from 'commander';
import { specReference } from '../../spec/reference.js';
import { schemaJson } from '../../spec/schema.js';

export function registerSchema(program: Command): void {
  program
    .command('schema')
    .description('print the JSON Schema of image specs (or, with --format markdown, a reference table)')
    .addOption(new Option('--format <format>', 'output format').choices(['json', 'markdown']).default('json'))
    .action((flags: { format: 'json' | 'markdown' }) => {
      const text = flags.format === 'markdown' ? specReference() : JSON.stringify(schemaJson(), null, 2);
      process.stdout.write(`${text}\n`);
    });
}
