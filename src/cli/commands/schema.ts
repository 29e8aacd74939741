/** `imgbuild schema`: print the JSON Schema of the spec language (for editors and CI). */
import type { Command } from 'commander';
import { schemaJson } from '../../spec/schema.js';

export function registerSchema(program: Command): void {
  program
    .command('schema')
    .description('print the JSON Schema of image specs')
    .action(() => {
      process.stdout.write(`${JSON.stringify(schemaJson(), null, 2)}\n`);
    });
}
