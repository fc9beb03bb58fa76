import { DecisionBatcher as StoreDecisionBatcher, type DecisionLog } from "@mycelium/topology";

export interface DecisionBatcherOptions {
  /** Most decisions written in one store transaction. @default 256 */
  maxBatch?: number;
  /** Most decisions waiting; beyond it record() fails fast rather than queueing without bound. @default 10000 */
  maxQueue?: number;
  onBatch?: (size: number, durationMs: number) => void;
}

/**
 * Group commit of 2PC decisions (the control store's batcher): while one batch is being written (one
 * fsync), the decisions that arrive wait and go together in the next batch. One transaction alone is
 * written at once; under load the batch grows, and throughput is no longer one fsync per transaction.
 */
export class DecisionBatcher extends StoreDecisionBatcher {
  constructor(log: DecisionLog, options: DecisionBatcherOptions = {}) {
    super(log, {
      maxBatch: options.maxBatch ?? 256,
      maxQueued: options.maxQueue ?? 10_000,
      ...(options.onBatch ? { onBatch: options.onBatch } : {}),
    });
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
