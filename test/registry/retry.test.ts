/** How often a failed exchange is tried again: a reset connection up to the policy's retries, a registry that never answers once more only. */
import { describe, expect, it } from 'vitest';
import { NetworkError } from '../../src/registry/http.js';
import { TIMEOUT_RETRIES, withRetries } from '../../src/registry/retry.js';

const policy = { retries: 4, baseDelayMs: 1, maxDelayMs: 2 };

async function attemptsUntilFailure(code: string): Promise<number> {
  let n = 0;
  await expect(
    withRetries(async () => {
      n++;
      throw new NetworkError(code, code);
    }, policy),
  ).rejects.toMatchObject({ code });
  return n;
}

describe('withRetries', () => {
  it('tries a reset connection again up to the retries, an idle timeout once more only, a refused one never', async () => {
    expect(await attemptsUntilFailure('ECONNRESET')).toBe(1 + policy.retries);
    expect(await attemptsUntilFailure('ETIMEDOUT')).toBe(1 + TIMEOUT_RETRIES);
    expect(await attemptsUntilFailure('ECONNREFUSED')).toBe(1);
  });
});
