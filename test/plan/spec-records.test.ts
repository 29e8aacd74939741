/**
 * planSpec reuses the normalised spec recorded at its last load (store/spec-records.ts) only
 * while the spec's bytes and inputs are those it was recorded with. A planted record (the same
 * key, another name) shows when the record is used.
 */
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { SpecError } from '../../src/errors.js';
import { sha256 } from '../../src/image/digest.js';
import { planSpec } from '../../src/plan/plan-spec.js';
import { loadSpec } from '../../src/spec/load.js';
import { specInputs } from '../../src/spec/spec-inputs.js';

let dir: string;
let cacheDir: string;
let specFile: string;

const SPEC = [
  'apiVersion: imgbuild/v1',
  'name: t/${APP_NAME:-app}',
  // YAML unescapes "\x24" to "$": a reference the text never spells out.
  'tags: ["${TAG}", "\\x24{BUILD:-dev}"]',
  'context: .',
  'layers:',
  '  - name: files',
  '    files:',
  '      - { path: /etc/greeting, content: "hello $${NOT_A_VAR}" }',
  'output:',
  '  - oci: ./out',
  '',
].join('\n');

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'imgbuild-specrec-'));
  cacheDir = join(dir, 'cache');
  specFile = join(dir, 'image.yaml');
  writeFileSync(specFile, SPEC);
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

const plan = (env: Record<string, string>, vars: Record<string, string> = {}) => planSpec(specFile, { cacheDir, env, vars });

/** The record's check made again for its fields as they are now, as imgbuild writes it. */
function signed(record: Record<string, unknown>): string {
  const { check: _, ...fields } = record;
  return JSON.stringify({ ...fields, check: sha256(JSON.stringify(fields)) });
}

/** Give the one record another name, as a stale record would have: is it what planSpec returns? */
function plantName(name: string, sign = true): void {
  const specs = join(cacheDir, 'specs');
  const file = join(specs, readdirSync(specs)[0]!);
  const record = JSON.parse(readFileSync(file, 'utf8')) as { spec: { name: string } };
  record.spec.name = name;
  writeFileSync(file, sign ? signed(record) : JSON.stringify(record));
}

describe('spec records', () => {
  it('keeps a loaded spec, equal to a fresh load, and uses it while nothing it depends on changed', async () => {
    const first = await plan({ TAG: 'v1', UNRELATED: 'a' });
    expect(first.spec).toEqual(await loadSpec(specFile, { env: { TAG: 'v1' } }));
    expect(readdirSync(join(cacheDir, 'specs'))).toHaveLength(1);
    plantName('t/planted');
    // Another variable the spec does not mention changes nothing.
    const again = await plan({ TAG: 'v1', UNRELATED: 'b' });
    expect(again.spec.name).toBe('t/planted');
  });

  it.each([
    ['the spec bytes', () => writeFileSync(specFile, SPEC.replace('/etc/greeting', '/etc/hello')), { TAG: 'v1' }, {}],
    ['a variable it refers to', () => undefined, { TAG: 'v2' }, {}],
    ['a variable it refers to through a YAML escape', () => undefined, { TAG: 'v1', BUILD: '7' }, {}],
    ['a variable with a default, once set', () => undefined, { TAG: 'v1', APP_NAME: 'web' }, {}],
    ['a --var', () => undefined, { TAG: 'v1' }, { TAG: 'v3' }],
    ['SOURCE_DATE_EPOCH', () => undefined, { TAG: 'v1', SOURCE_DATE_EPOCH: '1700000000' }, {}],
  ])('loads the spec again when %s changed', async (_what, change, env: Record<string, string>, vars: Record<string, string>) => {
    await plan({ TAG: 'v1' });
    plantName('t/planted');
    change();
    const fresh = await plan(env, vars);
    expect(fresh.spec.name).not.toBe('t/planted');
    expect(fresh.spec).toEqual(await loadSpec(specFile, { env, vars }));
  });

  it('names the spec in a problem found while planning as this run gave its path, not as the recording run did', async () => {
    writeFileSync(specFile, SPEC.replace('    files:\n', '    copy:\n      - { from: missing/, to: /m/ }\n    files:\n'));
    mkdirSync(join(dir, 'sub'));
    const sameFile = `${dir}/sub/../image.yaml`; // not join(), which would make it specFile again
    for (const given of [specFile, sameFile, specFile]) {
      const e = (await planSpec(given, { cacheDir, env: { TAG: 'v1' } }).catch((err: unknown) => err)) as SpecError;
      expect(e).toBeInstanceOf(SpecError);
      expect(e.diagnostics.map((d) => `${d.position.file}:${d.position.line}`)).toEqual([`${given}:8`]);
    }
  });

  it('never records a spec with errors: they are reported every time', async () => {
    await plan({ TAG: 'v1' });
    writeFileSync(specFile, SPEC.replace('name: t/', 'nmae: t/'));
    for (let i = 0; i < 2; i++) await expect(plan({ TAG: 'v1' })).rejects.toBeInstanceOf(SpecError);
  });

  it('reads a record it cannot use as none: corrupt, another version, or unwritable', async () => {
    await plan({ TAG: 'v1' });
    const specs = join(cacheDir, 'specs');
    const file = join(specs, readdirSync(specs)[0]!);
    for (const corrupt of ['{"format": 1, "spec": ', 'null', '7']) {
      writeFileSync(file, corrupt);
      expect((await plan({ TAG: 'v1' })).spec.name).toBe('t/app');
    }
    const record = JSON.parse(readFileSync(file, 'utf8')) as { imgbuild: string; spec: { name: string } };
    record.imgbuild = '0.0.0-other';
    record.spec.name = 't/planted';
    writeFileSync(file, signed(record));
    expect((await plan({ TAG: 'v1' })).spec.name).toBe('t/app');
    // A cache root the record cannot be written under: the build goes on without one.
    rmSync(specs, { recursive: true });
    writeFileSync(specs, 'not a directory');
    expect((await plan({ TAG: 'v1' })).spec.name).toBe('t/app');
  });

  it('reads a record whose spec was changed on disk (a flipped byte that still parses) as none', async () => {
    await plan({ TAG: 'v1' });
    plantName('t/plantes', false);
    expect((await plan({ TAG: 'v1' })).spec.name).toBe('t/app');
    // And the record written again is used.
    plantName('t/planted');
    expect((await plan({ TAG: 'v1' })).spec.name).toBe('t/planted');
  });

  it('records as inputs every variable the load looked up, and SOURCE_DATE_EPOCH', async () => {
    await plan({ TAG: 'e', PATH: '/bin' }, { TAG: 'v' });
    const specs = join(cacheDir, 'specs');
    const record = JSON.parse(readFileSync(join(specs, readdirSync(specs)[0]!), 'utf8')) as { inputs: unknown };
    // "$${NOT_A_VAR}" is a literal: nothing is looked up for it.
    expect(record.inputs).toEqual({ vars: { APP_NAME: null, BUILD: null, TAG: 'v' }, sourceDateEpoch: null });
    expect(specInputs(['TAG', 'APP_NAME', 'TAG'], { env: { TAG: 'e', SOURCE_DATE_EPOCH: '1' }, vars: { TAG: 'v' } })).toEqual({
      vars: { APP_NAME: null, TAG: 'v' },
      sourceDateEpoch: '1',
    });
  });
});
