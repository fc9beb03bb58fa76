import { DbError } from "../db-error";

interface Waiter {
  afterLsn: number;
  finish(result: boolean): void;
}

/**
 * In-process wake-ups for waitForChanges: the commit path calls `notify` with the shard's new last lsn after the
 * entry committed, so a waiting replicator stream resumes without polling. Bounded (`maxWaiters`, BUSY beyond).
 */
export class ChangeNotifier {
  private readonly byShard = new Map<string, Set<Waiter>>();
  private count = 0;

  constructor(private readonly maxWaiters: number) {}

  get size(): number {
    return this.count;
  }

  /**
   * Resolves true once `notify(shardId, lsn > afterLsn)` happens or `headLsn()` already says so, false after
   * `timeoutMs` or when `signal` aborts. The waiter is registered before `headLsn()` is read, so a commit in
   * between is not missed.
   */
  async wait(shardId: string, afterLsn: number, timeoutMs: number, signal: AbortSignal | undefined, headLsn: () => Promise<number>): Promise<boolean> {
    if (signal?.aborted) return false;
    if (this.count >= this.maxWaiters) {
      throw new DbError("BUSY", `${this.count} waitForChanges calls are already waiting`);
    }
    let shardWaiters = this.byShard.get(shardId);
    if (!shardWaiters) {
      shardWaiters = new Set();
      this.byShard.set(shardId, shardWaiters);
    }
    const waiters = shardWaiters;
    let waiter!: Waiter;
    const done = new Promise<boolean>((resolve) => {
      let timer: NodeJS.Timeout | undefined;
      const onAbort = () => waiter.finish(false);
      waiter = {
        afterLsn,
        finish: (result) => {
          if (!waiters.delete(waiter)) return;
          this.count -= 1;
          if (waiters.size === 0 && this.byShard.get(shardId) === waiters) this.byShard.delete(shardId);
          if (timer) clearTimeout(timer);
          signal?.removeEventListener("abort", onAbort);
          resolve(result);
        },
      };
      waiters.add(waiter);
      this.count += 1;
      timer = setTimeout(() => waiter.finish(false), Math.max(0, timeoutMs));
      signal?.addEventListener("abort", onAbort, { once: true });
    });
    try {
      if ((await headLsn()) > afterLsn) waiter.finish(true);
    } catch (error) {
      waiter.finish(false);
      throw error;
    }
    return done;
  }

  notify(shardId: string, lsn: number): void {
    const waiters = this.byShard.get(shardId);
    if (!waiters) return;
    for (const waiter of [...waiters]) if (lsn > waiter.afterLsn) waiter.finish(true);
  }

  /** The store is closing: every waiter resolves false. */
  clear(): void {
    for (const waiters of [...this.byShard.values()]) for (const waiter of [...waiters]) waiter.finish(false);
  }
}
