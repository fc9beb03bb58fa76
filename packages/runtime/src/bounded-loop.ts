import type { Logger } from "@mycelium/telemetry";

export interface BoundedLoopOptions {
  name: string;
  /** Time between the end of one run and the start of the next. */
  intervalMs: number;
  /** Each delay is varied by up to this fraction, so replicas do not run in lockstep. @default 0.1 */
  jitter?: number;
  /** After a failed run the delay doubles, up to this. @default 8 × intervalMs */
  maxBackoffMs?: number;
  /** Run once right away instead of after the first interval. @default false */
  runImmediately?: boolean;
  logger: Logger;
}

/**
 * A background task run again and again, one run at a time, until stopped. Failures are logged and
 * slow the loop down (bounded); stop() waits for the run in progress and is prompt otherwise.
 */
export class BoundedLoop {
  private timer: NodeJS.Timeout | null = null;
  private running: Promise<void> | null = null;
  private stopped = false;
  private started = false;
  private failures = 0;
  private readonly controller = new AbortController();

  constructor(
    private readonly options: BoundedLoopOptions,
    private readonly task: (signal: AbortSignal) => Promise<void>,
  ) {}

  start(): this {
    if (this.started) return this;
    this.started = true;
    this.schedule(this.options.runImmediately ? 0 : this.delay());
    return this;
  }

  /** Run now (if not already running), e.g. when something the task depends on changed. */
  trigger(): void {
    if (this.stopped || this.running || !this.started) return;
    this.schedule(0);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.controller.abort();
    if (this.timer) clearTimeout(this.timer);
    await this.running;
  }

  private delay(): number {
    const base = this.failures === 0
      ? this.options.intervalMs
      : Math.min(this.options.intervalMs * 2 ** this.failures, this.options.maxBackoffMs ?? this.options.intervalMs * 8);
    const jitter = this.options.jitter ?? 0.1;
    return Math.max(0, Math.round(base * (1 - jitter + 2 * jitter * Math.random())));
  }

  private schedule(delayMs: number): void {
    if (this.stopped) return;
    // One pending run at most: a new schedule replaces the old one.
    if (this.timer) clearTimeout(this.timer);
    this.timer = setTimeout(() => {
      this.timer = null;
      this.running = this.task(this.controller.signal).then(
        () => {
          this.failures = 0;
        },
        (error: unknown) => {
          if (this.stopped) return;
          this.failures = Math.min(this.failures + 1, 16);
          this.options.logger.warn({ err: error, loop: this.options.name, failures: this.failures }, "background task failed");
        },
      ).finally(() => {
        this.running = null;
        this.schedule(this.delay());
      });
    }, delayMs);
  }
}
