import { describe, expect, it } from 'vitest';
import { collectGarbage } from '../../src/cli/collect-garbage.js';

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
