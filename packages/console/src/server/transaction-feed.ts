import type { MyceliumClient } from "@mycelium/client";
import { backoffDelayMs, sleep } from "@mycelium/rpc";
import type { RecentTransactions } from "../core/recent-transactions";

const resubscribeBackoff = { initialDelayMs: 200, maxDelayMs: 5000, multiplier: 2, maxAttempts: Number.MAX_SAFE_INTEGER };

/**
 * Follows the coordinator's transaction event stream into `recent`, subscribing again (with a bounded
 * backoff) whenever the stream ends — a coordinator restart, a network blip — until stopped.
 */
export class TransactionFeed {
  private readonly controller = new AbortController();
  private running: Promise<void> | null = null;
  /** Why the stream is not flowing right now (null while it is). */
  lastError: string | null = null;

  constructor(
    private readonly client: MyceliumClient,
    private readonly recent: RecentTransactions,
  ) {}

  start(): this {
    this.running ??= this.run();
    return this;
  }

  private async run(): Promise<void> {
    const { signal } = this.controller;
    let failures = 0;
    while (!signal.aborted) {
      // A stream that has not failed within a second is flowing, events or not: the last error is old news.
      const settled = setTimeout(() => {
        this.lastError = null;
        failures = 0;
      }, 1000);
      try {
        for await (const event of this.client.subscribe({ signal })) {
          failures = 0;
          this.lastError = null;
          this.recent.apply(event.type === "completed" ? event : { type: "state_changed", txId: event.txId, newState: event.newState, atMs: event.atMs });
        }
        this.lastError = "the coordinator ended the event stream";
      } catch (error) {
        if (signal.aborted) return;
        this.lastError = error instanceof Error ? error.message : String(error);
      } finally {
        clearTimeout(settled);
      }
      // At least 100 ms between attempts (the backoff is fully jittered), at most 5 s.
      failures++;
      await sleep(100 + backoffDelayMs(resubscribeBackoff, failures), signal).catch(() => undefined);
    }
  }

  async stop(): Promise<void> {
    this.controller.abort();
    await this.running?.catch(() => undefined);
  }
}
