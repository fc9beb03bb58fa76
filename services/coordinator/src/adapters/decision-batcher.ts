import type { DecisionInput, DecisionLog, RecordDecisionResult } from "@mycelium/topology";

interface Pending {
  input: DecisionInput;
  resolve: (result: RecordDecisionResult) => void;
  reject: (error: unknown) => void;
}

export interface DecisionBatcherOptions {
  /** Most decisions written in one store transaction. @default 256 */
  maxBatch?: number;
  /** Most decisions waiting; beyond it record() fails fast rather than queueing without bound. @default 10000 */
  maxQueue?: number;
  onBatch?: (size: number, durationMs: number) => void;
}

/**
 * Group commit of 2PC decisions: while one batch is being written (one fsync), the decisions that
 * arrive wait and go together in the next batch. One transaction alone is written at once; under
 * load the batch grows, and throughput is no longer one fsync per transaction.
 */
export class DecisionBatcher {
  private queue: Pending[] = [];
  private flushing = false;

  constructor(
    private readonly log: DecisionLog,
    private readonly options: DecisionBatcherOptions = {},
  ) {}

  record(input: DecisionInput): Promise<RecordDecisionResult> {
    if (this.queue.length >= (this.options.maxQueue ?? 10_000)) {
      return Promise.reject(new Error(`decision queue is full (${this.queue.length} waiting); the control store is too slow`));
    }
    return new Promise((resolve, reject) => {
      this.queue.push({ input, resolve, reject });
      if (!this.flushing) void this.flush();
    });
  }

  private async flush(): Promise<void> {
    this.flushing = true;
    try {
      while (this.queue.length > 0) {
        const batch = this.queue.splice(0, this.options.maxBatch ?? 256);
        const started = performance.now();
        try {
          const results = await this.log.recordDecisions(batch.map((p) => p.input));
          this.options.onBatch?.(batch.length, performance.now() - started);
          const byTx = new Map(results.map((r) => [r.txId, r]));
          for (const pending of batch) {
            const result = byTx.get(pending.input.txId);
            if (result) pending.resolve(result);
            else pending.reject(new Error(`decision log returned no result for ${pending.input.txId}`));
          }
        } catch (error) {
          for (const pending of batch) pending.reject(error);
        }
      }
    } finally {
      this.flushing = false;
    }
  }
}

/** Acknowledgements of decisions by participants, written in batches in the background (bounded). */
export class DoneMarker {
  private queue: Array<{ txId: string; shardId: string }> = [];
  private flushing: Promise<void> | null = null;

  constructor(
    private readonly log: DecisionLog,
    private readonly onError: (error: unknown) => void,
    private readonly maxQueue = 100_000,
  ) {}

  mark(txId: string, shardId: string): void {
    // Dropping a mark is safe: the recovery loop re-sends the decision and marks it again.
    if (this.queue.length >= this.maxQueue) return;
    this.queue.push({ txId, shardId });
    this.flushing ??= this.flush().finally(() => {
      this.flushing = null;
    });
  }

  async drain(): Promise<void> {
    while (this.flushing) await this.flushing;
  }

  private async flush(): Promise<void> {
    while (this.queue.length > 0) {
      const batch = this.queue.splice(0, 1000);
      try {
        await this.log.markParticipantsDone(batch);
      } catch (error) {
        this.onError(error);
      }
    }
  }
}
