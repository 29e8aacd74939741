/**
 * The normalised spec of each spec file's last load (plan/plan-spec.ts), so that a build whose
 * spec did not change skips parsing and validating it: no YAML parser or schema validator is
 * even loaded, half of the JavaScript a no-op build would otherwise start. One JSON file per spec
 * path under `<root>/specs/`, replaced when the spec is loaded again.
 *
 * A record is found only for the same spec path, given the same way (its source positions name
 * the file as it was given), the same bytes (their digest) and the same imgbuild version and
 * record format. It keeps the inputs the load used (the values of the
 * variables the spec looked up, and SOURCE_DATE_EPOCH: spec/spec-inputs.ts), for the planner to
 * compare with their values now. Only specs that loaded without a problem are recorded, so a
 * spec with errors is always parsed and its errors reported. A record is only an optimisation:
 * one that cannot be read reads as none, and one that cannot be written is not.
 */
import { mkdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { digestHex, sha256, type Digest } from '../image/digest.js';
import { packageVersion } from '../package-files.js';
import type { NormalizedSpec } from '../spec/normalized.js';
import type { SpecInputs } from '../spec/spec-inputs.js';
import { writeFileAtomic } from './atomic.js';

/**
 * Changing what a record holds, or how a spec is normalised, changes this (2: inputs are the
 * names a load looked up; 3: the path as it was given; 4: excludes without a trailing "/"; 5: where `context:` is written;
 * 6: the record's check).
 */
const FORMAT = 6;

/** What a spec was loaded from: its absolute path and the digest of its bytes. */
export interface SpecKey {
  specFile: string;
  specDigest: Digest;
  /**
   * The path as it was given (`image.yaml`, `../app/image.yaml`): the spec's source positions
   * name the file by it, and a problem found while planning is shown at `<shownAs>:line:col`
   * with the code frame read from there.
   */
  shownAs: string;
}

/** A spec as loaded, with the inputs its load used. */
export interface RecordedSpec {
  spec: NormalizedSpec;
  inputs: SpecInputs;
}

/** The spec holds its own path and digest, its key. */
interface SpecRecord {
  format: number;
  imgbuild: string;
  shownAs: string;
  inputs: SpecInputs;
  spec: NormalizedSpec;
  /** The digest of the JSON of the fields above, in that order (see `checked`). */
  check: Digest;
}

/** The records of one cache root (nothing is created until one is saved). */
export class SpecRecords {
  constructor(private readonly root: string) {}

  #file(specFile: string): string {
    return join(this.root, 'specs', `${digestHex(sha256(specFile))}.json`);
  }

  /** The spec recorded for exactly this key, with the inputs it was loaded with, if any. */
  async load(key: SpecKey): Promise<RecordedSpec | undefined> {
    const text = await readFile(this.#file(key.specFile), 'utf8').catch(() => undefined);
    const r = text === undefined ? undefined : parseRecord(text);
    if (!r?.spec || !isInputs(r.inputs) || !checked(r)) return undefined;
    const same = r.format === FORMAT && r.imgbuild === packageVersion() && r.spec.specFile === key.specFile && r.spec.specDigest === key.specDigest && r.shownAs === key.shownAs;
    return same ? { spec: r.spec, inputs: r.inputs } : undefined;
  }

  /** Record `spec`, loaded from exactly `key` (its own path and digest are the key's) with `inputs`. */
  async save(key: SpecKey, spec: NormalizedSpec, inputs: SpecInputs): Promise<void> {
    const fields = { format: FORMAT, imgbuild: packageVersion(), shownAs: key.shownAs, inputs, spec };
    const record: SpecRecord = { ...fields, check: sha256(JSON.stringify(fields)) };
    const tmpDir = join(this.root, 'tmp');
    await mkdir(join(this.root, 'specs'), { recursive: true });
    await mkdir(tmpDir, { recursive: true });
    await writeFileAtomic(tmpDir, this.#file(key.specFile), JSON.stringify(record));
  }
}

/**
 * Whether the record's fields are those it was saved with. The key only says which spec the record
 * is for; a byte flipped in the normalised spec itself (a mode, a tag, a file's content) still
 * parses, and was built as read, a wrong image on every build until the spec was edited.
 */
function checked(r: Partial<SpecRecord>): boolean {
  const { check, ...fields } = r;
  return check === sha256(JSON.stringify(fields));
}

const isInputs = (v: unknown): v is SpecInputs => typeof v === 'object' && v !== null && typeof (v as SpecInputs).vars === 'object' && (v as SpecInputs).vars !== null;

function parseRecord(text: string): Partial<SpecRecord> | undefined {
  try {
    const value = JSON.parse(text) as unknown;
    return typeof value === 'object' && value !== null ? (value as Partial<SpecRecord>) : undefined;
  } catch {
    return undefined;
  }
}
