/**
 * The retry policy for registry exchanges: what is worth another try (5xx, 429, a connection
 * reset or cut mid-exchange) and how long to wait (exponential backoff with jitter, or the
 * server's Retry-After), for a bounded number of attempts. Refused connections and DNS failures
 * are not retried: the answer would not change in a second, and people should hear it at once.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { drain, NetworkError, type HttpResponse } from './http.js';

export interface RetryPolicy {
  /** Further attempts after the first. */
  retries: number;
  baseDelayMs: number;
  maxDelayMs: number;
}

export const DEFAULT_RETRY: RetryPolicy = { retries: 4, baseDelayMs: 250, maxDelayMs: 30_000 };

const RETRIABLE_CODES = new Set(['ECONNRESET', 'EPIPE', 'ETIMEDOUT', 'ECONNABORTED', 'EAI_AGAIN', 'UND_ERR_SOCKET']);

export function isRetriableStatus(status: number): boolean {
  return status === 429 || (status >= 500 && status !== 501 && status !== 505);
}

export function isRetriableError(e: unknown): boolean {
  return e instanceof NetworkError && RETRIABLE_CODES.has(e.code);
}

/**
 * A registry that kept a connection idle past http.ts's timeout (a minute) is tried once more,
 * not `retries` times: one that accepts connections and never answers held a build for five
 * minutes before it was told.
 */
export const TIMEOUT_RETRIES = 1;
const isTimeout = (e: unknown) => e instanceof NetworkError && e.code === 'ETIMEDOUT';

/** Delay before attempt `n` (1-based retry number), honouring Retry-After when given. */
export function retryDelay(policy: RetryPolicy, n: number, retryAfter?: string | string[]): number {
  const ra = Array.isArray(retryAfter) ? retryAfter[0] : retryAfter;
  if (ra !== undefined) {
    const secs = Number(ra);
    const ms = Number.isFinite(secs) ? secs * 1000 : Date.parse(ra) - Date.now();
    if (Number.isFinite(ms)) return Math.min(Math.max(ms, 0), policy.maxDelayMs);
  }
  const exp = policy.baseDelayMs * 2 ** (n - 1);
  return Math.min(exp * (0.5 + Math.random() / 2), policy.maxDelayMs);
}

/**
 * Run `attempt` until it gives a response that is not worth retrying, or the retries run out.
 * The last response is returned even when it is a failure: the caller words the error.
 */
export async function withRetries(attempt: () => Promise<HttpResponse>, policy: RetryPolicy): Promise<HttpResponse> {
  let timeouts = 0;
  for (let n = 0; ; n++) {
    let res: HttpResponse;
    try {
      res = await attempt();
    } catch (e) {
      if (n >= policy.retries || !isRetriableError(e) || (isTimeout(e) && timeouts++ >= TIMEOUT_RETRIES)) throw e;
      await sleep(retryDelay(policy, n + 1));
      continue;
    }
    if (n >= policy.retries || !isRetriableStatus(res.status)) return res;
    drain(res.body);
    await sleep(retryDelay(policy, n + 1, res.headers['retry-after']));
  }
}
