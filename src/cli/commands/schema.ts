/** `imgbuild schema`: print the JSON Schema of the spec language (for editors and CI). */
import { Option, type Command } from 'commander';

export function registerSchema(program: Command): void {
  program
    .command('schema')
    .description('print the JSON Schema of image specs (or, with --format markdown, a reference table)')
    .addOption(new Option('--format <format>', 'output format').choices(['json', 'markdown']).default('json'))
    .action(async (flags: { format: 'json' | 'markdown' }) => {
      const [{ specReference }, { schemaJson }] = await Promise.all([import('../../spec/reference.js'), import('../../spec/schema-file.js')]);
      const text = flags.format === 'markdown' ? specReference() : JSON.stringify(schemaJson(), null, 2);
      process.stdout.write(`${text}\n`);
    });
}
