/** A request that failed for now (a network error, a 5xx): worth another try. */
export class Unavailable extends Error {
  override readonly name: string = 'Unavailable';
}

/** Waits before each retry: about 15 s in all, as long as an API takes to restart on an idle machine. */
export const RETRY_DELAYS_MS: readonly number[] = [500, 1000, 2000, 4000, 8000];

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * Runs `attempt` until it succeeds, trying again after each `Unavailable` it throws while `delaysMs` has a wait
 * left (`onRetry` says so first); any other error, or the last `Unavailable`, is thrown.
 */
export async function withRetries<T>(
  attempt: () => Promise<T>,
  options: { delaysMs?: readonly number[]; onRetry?: (reason: string, delayMs: number) => void } = {},
): Promise<T> {
  const delays = options.delaysMs ?? RETRY_DELAYS_MS;
  for (let k = 0; ; k++) {
    try {
      return await attempt();
    } catch (err) {
      const delay = delays[k];
      if (!(err instanceof Unavailable) || delay === undefined) throw err;
      options.onRetry?.(err.message, delay);
      await sleep(delay);
    }
  }
}

/** Why a fetch failed, in a few words: undici hides the system error (ECONNREFUSED, …) in `cause`. */
export function networkReason(err: unknown): string {
  const cause = (err as { cause?: { code?: string; message?: string } }).cause;
  return cause?.code ?? cause?.message ?? (err as Error).message;
}
