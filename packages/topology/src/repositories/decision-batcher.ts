import type { DecisionInput, DecisionLog, RecordDecisionResult } from "../control-store";
import { TopologyError } from "../topology-error";

export interface DecisionBatcherOptions {
  /** Most decisions written by one store transaction. @default 128 */
  maxBatch?: number;
  /** Most decisions waiting; beyond it record() fails with BUSY. @default 10000 */
  maxQueued?: number;
  /** Told after each batch is written (for metrics). Must not throw. */
  onBatch?: (size: number, durationMs: number) => void;
}

/**
 * Group commit for the decision log: decisions recorded while a batch is being written wait and go together
 * in the next one, so under load many transactions share one store transaction (one fsync) and throughput is
 * not one fsync per transaction; with no load a decision is written at once.
 */
export class DecisionBatcher {
  private readonly maxBatch: number;
  private readonly maxQueued: number;
  private readonly onBatch: ((size: number, durationMs: number) => void) | undefined;
  private queue: Array<{ input: DecisionInput; resolve: (result: RecordDecisionResult) => void; reject: (error: Error) => void }> = [];
  private writing: Promise<void> | null = null;
  batches = 0;

  constructor(
    private readonly log: DecisionLog,
    options: DecisionBatcherOptions = {},
  ) {
    this.maxBatch = options.maxBatch ?? 128;
    this.maxQueued = options.maxQueued ?? 10_000;
    this.onBatch = options.onBatch;
    if (!Number.isSafeInteger(this.maxBatch) || this.maxBatch < 1) throw new TopologyError("INVALID_ARGUMENT", "maxBatch must be a positive integer");
  }

  /** Resolves once the decision is durable (or refused because a different one stands). */
  record(input: DecisionInput): Promise<RecordDecisionResult> {
    if (this.queue.length >= this.maxQueued) {
      return Promise.reject(new TopologyError("BUSY", `${this.queue.length} decisions already waiting to be written`));
    }
    return new Promise((resolve, reject) => {
      this.queue.push({ input, resolve, reject });
      if (!this.writing) this.writing = this.drain();
    });
  }

  private async drain(): Promise<void> {
    while (this.queue.length > 0) {
      const batch = this.queue.splice(0, this.maxBatch);
      try {
        const started = performance.now();
        const results = await this.log.recordDecisions(batch.map((item) => item.input));
        this.batches += 1;
        try {
          this.onBatch?.(batch.length, performance.now() - started);
        } catch {
          // Observers must not break the write path.
        }
        batch.forEach((item, index) => item.resolve(results[index]!));
      } catch (error) {
        for (const item of batch) item.reject(error as Error);
      }
    }
    this.writing = null;
  }

  /** Waits until everything queued has been written. */
  async flush(): Promise<void> {
    while (this.writing) await this.writing;
  }
}
