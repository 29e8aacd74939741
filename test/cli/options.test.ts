import { describe, expect, it } from 'vitest';
import { collectVar } from '../../src/cli/options.js';

describe('--var', () => {
  it('takes KEY=VALUE, the value holding "=" too, the last of a key winning', () => {
    expect(collectVar('B=2', collectVar('A=x=y', collectVar('B=1')))).toEqual({ A: 'x=y', B: '2' });
  });

  it('refuses a key no ${...} in the spec could name, as a usage error', () => {
    for (const kv of ['A B=x', '1A=x', 'A-B=x', '=x', 'novalue']) expect(() => collectVar(kv), kv).toThrow(expect.objectContaining({ kind: 'usage' }));
  });
});
