/**
 * Several processes share one store: all writing the same blob at once, and one of them
 * killed with SIGKILL mid-write. The store must end with exactly one valid blob and nothing
 * half-written under blobs/.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ContentStore } from '../../src/store/content-store.js';
import { parseDigest } from '../../src/image/digest.js';
import { bundle } from './fixtures/bundle.js';

let work: string;
let child: string;
beforeAll(async () => {
  work = mkdtempSync(join(tmpdir(), 'imgbuild-conc-'));
  child = await bundle(join(import.meta.dirname, 'fixtures', 'put-blob.ts'), work);
});
afterAll(() => rmSync(work, { recursive: true, force: true }));

const SIZE = 4 << 20;

function run(root: string): { proc: ChildProcess; out: Promise<string> } {
  const proc = spawn(process.execPath, [child, root, String(SIZE), '1'], { stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  proc.stdout!.on('data', (b: Buffer) => (out += b.toString()));
  return { proc, out: new Promise((res) => proc.on('close', () => res(out))) };
}

describe('ContentStore shared by processes', () => {
  it('concurrent writers of one blob, one killed mid-write, leave one valid blob', async () => {
    const root = join(work, 'store');
    const writers = Array.from({ length: 4 }, () => run(root));
    const victim = run(root);
    // Kill the victim once it has written something, i.e. while its temp file is open.
    await new Promise<void>((res) => victim.proc.stdout!.once('data', () => res()));
    victim.proc.kill('SIGKILL');

    const outs = await Promise.all(writers.map((w) => w.out));
    const digests = outs.map((o) => parseDigest(/digest (\S+)/.exec(o)![1]!));
    expect(new Set(digests).size).toBe(1);
    await victim.out;

    const store = await ContentStore.open(root);
    const blobs = readdirSync(join(root, 'blobs', 'sha256'));
    expect(blobs).toEqual([digests[0]!.slice(7)]);
    expect(statSync(store.blobPath(digests[0]!)).size).toBe(SIZE);
    expect(await store.verify(digests[0]!)).toBe(true);
    // Only the killed process's temp file may remain, and it is not under blobs/.
    expect(readdirSync(join(root, 'tmp')).length).toBeLessThanOrEqual(1);
  });
});
