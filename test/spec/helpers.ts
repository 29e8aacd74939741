/** Load specs from strings in tests, returning diagnostics or the normalised spec. */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Diagnostic } from '../../src/errors.js';
import { SpecError } from '../../src/errors.js';
import { diagnose, loadSpec, type LoadOptions } from '../../src/spec/load.js';
import type { NormalizedSpec } from '../../src/spec/normalized.js';
import { parseSpecSource } from '../../src/spec/source.js';

export function problems(yaml: string, opts: LoadOptions = {}): Diagnostic[] {
  return diagnose(parseSpecSource('image.yaml', yaml), { env: {}, ...opts }).diagnostics;
}

/** "line:col message" for compact assertions. */
export function brief(yaml: string, opts: LoadOptions = {}): string[] {
  return problems(yaml, opts).map((d) => `${d.position.line}:${d.position.col} ${d.message}${d.hint ? ` (${d.hint})` : ''}`);
}

export async function load(yaml: string, opts: LoadOptions = {}, dir = mkdtempSync(join(tmpdir(), 'imgbuild-spec-'))): Promise<NormalizedSpec> {
  const file = join(dir, 'image.yaml');
  writeFileSync(file, yaml);
  return loadSpec(file, { env: {}, ...opts });
}

export async function loadError(yaml: string, opts: LoadOptions = {}): Promise<SpecError> {
  try {
    await load(yaml, opts);
  } catch (e) {
    if (e instanceof SpecError) return e;
    throw e;
  }
  throw new Error('spec loaded without errors');
}

export const minimal = (extra = '') => `apiVersion: imgbuild/v1
name: example/app
layers:
  - name: etc
    files:
      - { path: /etc/app.conf, content: "x=1\\n" }
${extra}`;

/** A spec of one layer, "a", whose keys are `body` (lines indented under it): its first key is on line 5. */
export const oneLayer = (body: string) => `apiVersion: imgbuild/v1
name: example/app
layers:
  - name: a
${body}`;
