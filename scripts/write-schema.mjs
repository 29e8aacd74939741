// Writes schemas/image.schema.json from the one definition in src/spec/schema.ts (via dist/).
// `npm test` fails when the committed file is stale, so run `npm run schema` after changing it.
import { writeFileSync } from 'node:fs';
import { generateSchemaJson } from '../dist/spec/schema.js';

const out = new URL('../schemas/image.schema.json', import.meta.url);
writeFileSync(out, `${JSON.stringify(generateSchemaJson(), null, 2)}\n`);
console.log(`wrote ${out.pathname}`);
