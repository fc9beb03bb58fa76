/**
 * Runs an async task for many callers at once: `run()` resolves when a run that began after the call has
 * finished (so it covers whatever the caller did before calling). While one run is in progress, every new
 * caller shares the single next run.
 */
export class Coalescer {
  private running: Promise<void> | null = null;
  private queued: Promise<void> | null = null;

  constructor(private readonly task: () => Promise<void>) {}

  run(): Promise<void> {
    if (this.queued) return this.queued;
    const previous = this.running ?? Promise.resolve();
    const queued: Promise<void> = previous
      .catch(() => undefined)
      .then(async () => {
        this.queued = null;
        this.running = queued;
        try {
          await this.task();
        } finally {
          if (this.running === queued) this.running = null;
        }
      });
    this.queued = queued;
    return queued;
  }
}
