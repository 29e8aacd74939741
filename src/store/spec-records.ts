/**
 * The normalised spec of each spec file's last load (plan/plan-spec.ts), so that a build whose
 * spec did not change skips parsing and validating it: no YAML parser or schema validator is
 * even loaded, half of the JavaScript a no-op build would otherwise start. One JSON file per spec
 * path under `<root>/specs/`, replaced when the spec is loaded again.
 *
 * A record is used only for the same spec path, the same bytes (their digest), the same inputs
 * (the values of the variables the text refers to and SOURCE_DATE_EPOCH, spec/spec-inputs.ts)
 * and the same imgbuild version and record format. Only specs that loaded without a problem are
 * recorded, so a spec with errors is always parsed and its errors reported. A record is only an
 * optimisation: one that cannot be read reads as none, and one that cannot be written is not.
 */
import { mkdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { digestHex, sha256, type Digest } from '../image/digest.js';
import { packageVersion } from '../package-files.js';
import type { NormalizedSpec } from '../spec/normalized.js';
import type { SpecInputs } from '../spec/spec-inputs.js';
import { writeFileAtomic } from './atomic.js';

/** Changing what a record holds, or how a spec is normalised, changes this. */
const FORMAT = 1;

/** What a spec was loaded from: its absolute path, the digest of its bytes and its inputs. */
export interface SpecKey {
  specFile: string;
  specDigest: Digest;
  inputs: SpecInputs;
}

interface SpecRecord extends SpecKey {
  format: number;
  imgbuild: string;
  spec: NormalizedSpec;
}

export class SpecRecords {
  private constructor(private readonly root: string) {}

  /** The records of one cache root (nothing is created until one is saved). */
  static at(root: string): SpecRecords {
    return new SpecRecords(root);
  }

  #file(specFile: string): string {
    return join(this.root, 'specs', `${digestHex(sha256(specFile))}.json`);
  }

  /** The spec recorded for exactly this key, if any. */
  async load(key: SpecKey): Promise<NormalizedSpec | undefined> {
    let record: Partial<SpecRecord>;
    try {
      record = JSON.parse(await readFile(this.#file(key.specFile), 'utf8')) as Partial<SpecRecord>;
    } catch {
      return undefined;
    }
    const same =
      record.format === FORMAT &&
      record.imgbuild === packageVersion() &&
      record.specFile === key.specFile &&
      record.specDigest === key.specDigest &&
      JSON.stringify(record.inputs) === JSON.stringify(key.inputs) &&
      record.spec?.specDigest === key.specDigest;
    return same ? record.spec : undefined;
  }

  async save(key: SpecKey, spec: NormalizedSpec): Promise<void> {
    const record: SpecRecord = { format: FORMAT, imgbuild: packageVersion(), ...key, spec };
    const tmpDir = join(this.root, 'tmp');
    await mkdir(join(this.root, 'specs'), { recursive: true });
    await mkdir(tmpDir, { recursive: true });
    await writeFileAtomic(tmpDir, this.#file(key.specFile), JSON.stringify(record));
  }
}
