import { setTimeout as sleep } from 'node:timers/promises';
import { describe, expect, it, vi } from 'vitest';
import { ArrayBufferGuard, collectGarbage, startMajorCollection } from '../../src/cli/collect-garbage.js';

const MiB = 1 << 20;
const arrayBuffers = () => process.memoryUsage().arrayBuffers;

/** Resolves once fewer than `bytes` of array buffers are held (V8 frees them as it sweeps, partly after a collection). */
async function heldBelow(bytes: number): Promise<number> {
  const deadline = Date.now() + 5000;
  while (arrayBuffers() >= bytes && Date.now() < deadline) await sleep(20);
  return arrayBuffers();
}

/** A full collection, and its sweeping done: what is held stops changing (a loaded machine sweeps slowly). */
async function collectAndSettle(): Promise<void> {
  collectGarbage();
  for (let last = -1, i = 0; i < 250 && arrayBuffers() !== last; i++) {
    last = arrayBuffers();
    await sleep(20);
  }
}

/** Allocate `mib` buffers of 1 MiB and drop them: garbage until the next full collection. */
function litter(mib: number): void {
  let kept: Buffer[] | undefined = [];
  for (let i = 0; i < mib; i++) kept.push(Buffer.alloc(MiB, i));
  kept = undefined;
}

describe('collectGarbage', () => {
  it('collects what nothing holds any more', async () => {
    const weak = (() => new WeakRef({ plan: new Array(1000).fill('entry') }))();
    // A WeakRef's target is kept until the end of the job that made (or read) it.
    await new Promise((r) => setTimeout(r, 0));
    collectGarbage();
    expect(weak.deref()).toBeUndefined();
  });

  it('can be called again', () => {
    collectGarbage();
    collectGarbage();
  });
});

describe('startMajorCollection', () => {
  it('gets dropped array buffers freed without a forced collection, and costs no memory itself', async () => {
    await collectAndSettle();
    litter(16);
    await sleep(0);
    const before = arrayBuffers();
    const rss = process.memoryUsage().rss;
    startMajorCollection();
    // The 64 MB it reports are never touched.
    expect(process.memoryUsage().rss - rss).toBeLessThan(16 * MiB);
    expect(await heldBelow(before - 12 * MiB)).toBeLessThan(before - 12 * MiB);
  });

  it('collects all the same where 64 MB cannot be promised', async () => {
    await collectAndSettle();
    litter(16);
    await sleep(0);
    const before = arrayBuffers();
    vi.stubGlobal(
      'ArrayBuffer',
      class {
        constructor() {
          throw new RangeError('Array buffer allocation failed');
        }
      },
    );
    try {
      startMajorCollection();
    } finally {
      vi.unstubAllGlobals();
    }
    expect(await heldBelow(before - 12 * MiB)).toBeLessThan(before - 12 * MiB);
  });
});

describe('ArrayBufferGuard', () => {
  it('collects once dropped array buffers have piled up, and not before', async () => {
    await collectAndSettle();
    const guard = new ArrayBufferGuard(8 * MiB);
    guard.start();
    guard.stop();
    litter(4);
    expect(guard.check()).toBe(false);
    litter(8);
    // As the guard's timer does: the job that dropped them has ended.
    await sleep(0);
    const before = arrayBuffers();
    expect(guard.check()).toBe(true);
    expect(await heldBelow(before - 8 * MiB)).toBeLessThan(before - 8 * MiB);
  });

  it('does not collect again for buffers that are still held', async () => {
    await collectAndSettle();
    const guard = new ArrayBufferGuard(8 * MiB);
    guard.start();
    guard.stop();
    const held = Array.from({ length: 12 }, () => Buffer.alloc(MiB));
    expect(guard.check()).toBe(true);
    // The floor is now what is held: the same buffers never count as piled up again.
    for (let i = 0; i < 3; i++) expect(guard.check()).toBe(false);
    expect(held).toHaveLength(12);
  });

  it('checks by itself while started, and stops checking when stopped', async () => {
    await collectAndSettle();
    const guard = new ArrayBufferGuard(8 * MiB);
    const checks = vi.spyOn(guard, 'check');
    guard.start();
    try {
      litter(16);
      // What a check decides is the tests above; here, that its timer makes one. (Node 24 may free
      // these by itself before the first check: they are gone after it either way.)
      const deadline = Date.now() + 5000;
      while (checks.mock.calls.length === 0 && Date.now() < deadline) await sleep(20);
      expect(checks).toHaveBeenCalled();
      expect(await heldBelow(8 * MiB)).toBeLessThan(8 * MiB);
    } finally {
      guard.stop();
    }
    checks.mockClear();
    litter(16);
    await sleep(3 * ArrayBufferGuard.CHECK_MS);
    expect(checks).not.toHaveBeenCalled();
  });

  it('measures from the least held since the last collection, not from buffers still being swept at start', async () => {
    await collectAndSettle();
    const base = arrayBuffers();
    const sweeping = Array.from({ length: 12 }, () => Buffer.alloc(MiB));
    const guard = new ArrayBufferGuard(8 * MiB);
    guard.start(); // the floor starts with the 12 MiB above counted
    sweeping.length = 0;
    await collectAndSettle();
    expect(guard.check()).toBe(false); // the floor follows what is held down to `base`
    const piled = Array.from({ length: 10 }, () => Buffer.alloc(MiB));
    // 10 MiB above the least held: a pile-up, though less than 8 MiB above where it started.
    expect(guard.check()).toBe(true);
    expect(piled).toHaveLength(10);
    guard.stop();
  });
});
