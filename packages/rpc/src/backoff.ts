export interface BackoffPolicy {
  /** Delay before the first retry. @default 100 */
  initialDelayMs: number;
  /** No delay exceeds this. @default 5000 */
  maxDelayMs: number;
  /** Each delay is the previous times this (before jitter). @default 2 */
  multiplier: number;
  /** Attempts in all, the first included; a bound on every retry loop. @default 5 */
  maxAttempts: number;
}

export const defaultBackoff: BackoffPolicy = { initialDelayMs: 100, maxDelayMs: 5000, multiplier: 2, maxAttempts: 5 };

/**
 * The delay before retry number `retry` (1 for the first retry): exponential, capped, with "full
 * jitter" (uniform in [0, cap]) so that many callers retrying at once spread out instead of colliding.
 */
export function backoffDelayMs(policy: BackoffPolicy, retry: number, random: () => number = Math.random): number {
  const exponential = policy.initialDelayMs * Math.pow(policy.multiplier, Math.max(0, retry - 1));
  const capped = Math.min(policy.maxDelayMs, exponential);
  return Math.floor(random() * capped);
}

export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason);
    const timer = setTimeout(() => {
      signal?.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal?.reason);
    };
    signal?.addEventListener("abort", onAbort, { once: true });
  });
}
