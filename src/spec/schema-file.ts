/**
 * The spec's JSON Schema as shipped: schemas/image.schema.json, generated from schema.ts by
 * `npm run schema` (a test fails when it is stale). Reading the file at run time keeps the schema
 * builder out of the CLI's start-up.
 */
import { readFileSync } from 'node:fs';
import { packageFile } from '../package-files.js';

let cached: Record<string, unknown> | undefined;

export function schemaJson(): Record<string, unknown> {
  cached ??= JSON.parse(readFileSync(packageFile('schemas', 'image.schema.json'), 'utf8')) as Record<string, unknown>;
  return cached;
}
