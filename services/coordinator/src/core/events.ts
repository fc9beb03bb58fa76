import type { TransactionState } from "./transaction-state";

/** "none" is the state before Begin. */
export type EventState = TransactionState | "none";

export type TransactionEvent =
  | { type: "state_changed"; txId: string; oldState: EventState; newState: TransactionState; sequence: number; atMs: number }
  | { type: "completed"; txId: string; success: boolean; durationMs: number; sequence: number; atMs: number };

type EventBody =
  | { type: "state_changed"; txId: string; oldState: EventState; newState: TransactionState }
  | { type: "completed"; txId: string; success: boolean; durationMs: number };

export class SubscriberOverflow extends Error {
  constructor(limit: number) {
    super(`subscriber fell ${limit} events behind and was disconnected; subscribe again (events are not replayed)`);
    this.name = "SubscriberOverflow";
  }
}

/** One subscriber's bounded queue of events. */
export class Subscription implements AsyncIterable<TransactionEvent> {
  private readonly buffer: TransactionEvent[] = [];
  private waiter: (() => void) | null = null;
  private failure: Error | null = null;
  private closed = false;

  constructor(
    readonly txId: string | null,
    private readonly limit: number,
    private readonly onClose: (subscription: Subscription) => void,
  ) {}

  push(event: TransactionEvent): void {
    if (this.closed) return;
    if (this.txId && event.txId !== this.txId) return;
    if (this.buffer.length >= this.limit) {
      this.failure = new SubscriberOverflow(this.limit);
      this.close();
      return;
    }
    this.buffer.push(event);
    this.wake();
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.onClose(this);
    this.wake();
  }

  private wake(): void {
    const waiter = this.waiter;
    this.waiter = null;
    waiter?.();
  }

  async *[Symbol.asyncIterator](): AsyncIterator<TransactionEvent> {
    try {
      for (;;) {
        const next = this.buffer.shift();
        if (next) {
          yield next;
          continue;
        }
        if (this.failure) throw this.failure;
        if (this.closed) return;
        await new Promise<void>((resolve) => {
          this.waiter = resolve;
        });
      }
    } finally {
      this.close();
    }
  }
}

/** Fan-out of transaction events to subscribers, in the order they happen, with a bounded queue each. */
export class EventHub {
  private readonly subscriptions = new Set<Subscription>();
  private sequence = 0;

  constructor(private readonly perSubscriberLimit = 10_000, private readonly maxSubscribers = 1000) {}

  subscribe(txId: string | null): Subscription {
    if (this.subscriptions.size >= this.maxSubscribers) throw new Error(`too many subscribers (${this.maxSubscribers})`);
    const subscription = new Subscription(txId, this.perSubscriberLimit, (s) => this.subscriptions.delete(s));
    this.subscriptions.add(subscription);
    return subscription;
  }

  emit(body: EventBody, nowMs = Date.now()): void {
    if (this.subscriptions.size === 0) return;
    const event = { ...body, sequence: ++this.sequence, atMs: nowMs } as TransactionEvent;
    for (const subscription of this.subscriptions) subscription.push(event);
  }

  get subscriberCount(): number {
    return this.subscriptions.size;
  }

  closeAll(): void {
    for (const subscription of [...this.subscriptions]) subscription.close();
  }
}
