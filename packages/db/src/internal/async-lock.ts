import { DbError } from "../db-error";

interface Waiter {
  grant(): void;
  fail(error: Error): void;
  timer: NodeJS.Timeout;
}

/**
 * A FIFO mutex for async code with a bounded wait queue and a bounded wait. better-sqlite3 is synchronous, so
 * SQLite writers to one shard are serialised here, in JavaScript, where waiting costs nothing, instead of in
 * SQLite's busy handler, which would block the event loop.
 */
export class AsyncLock {
  private held = false;
  private readonly waiters: Waiter[] = [];

  constructor(
    private readonly name: string,
    private readonly maxWaiters: number,
    private readonly waitTimeoutMs: number,
  ) {}

  get isHeld(): boolean {
    return this.held;
  }

  get waiting(): number {
    return this.waiters.length;
  }

  /** Resolves with a release function once the lock is ours. */
  acquire(): Promise<() => void> {
    if (!this.held) {
      this.held = true;
      return Promise.resolve(this.releaser());
    }
    if (this.waiters.length >= this.maxWaiters) {
      return Promise.reject(
        new DbError("BUSY", `${this.name}: ${this.waiters.length} writers already waiting for the write lock`),
      );
    }
    return new Promise((resolve, reject) => {
      const waiter: Waiter = {
        grant: () => {
          clearTimeout(waiter.timer);
          resolve(this.releaser());
        },
        fail: (error) => {
          clearTimeout(waiter.timer);
          reject(error);
        },
        timer: setTimeout(() => {
          this.remove(waiter);
          reject(new DbError("LOCK_TIMEOUT", `${this.name}: write lock not granted within ${this.waitTimeoutMs} ms`));
        }, this.waitTimeoutMs),
      };
      this.waiters.push(waiter);
    });
  }

  /** Fails every queued waiter (the store is closing); the current holder keeps the lock. */
  failWaiters(error: Error): void {
    for (const waiter of this.waiters.splice(0)) waiter.fail(error);
  }

  private remove(waiter: Waiter): void {
    const position = this.waiters.indexOf(waiter);
    if (position !== -1) this.waiters.splice(position, 1);
  }

  private releaser(): () => void {
    let released = false;
    return () => {
      if (released) return;
      released = true;
      const next = this.waiters.shift();
      if (next) next.grant();
      else this.held = false;
    };
  }
}
