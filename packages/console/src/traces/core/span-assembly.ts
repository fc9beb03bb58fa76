import type { SpanRecord } from "@mycelium/telemetry";

/** OpenTelemetry span kinds, as numbers in span records. */
export const SpanKind = { internal: 0, server: 1, client: 2, producer: 3, consumer: 4 } as const;

export const attributeNames = {
  txId: "mycelium.tx_id",
  outcome: "mycelium.tx_outcome",
  commitKind: "mycelium.tx_commit_kind",
  tables: "mycelium.tables",
  shardId: "mycelium.shard_id",
} as const;

/** One transaction as the tail prints it: every span of every trace that carried its id. */
export interface AssembledTransaction {
  /** Null for a trace that belongs to no transaction (heartbeats, replication), shown with --all. */
  txId: string | null;
  traceIds: string[];
  spans: SpanRecord[];
  outcome: "committed" | "aborted" | "unknown";
  /** Why it was printed: its end arrived and settled, or it waited too long for the rest. */
  complete: boolean;
}

export interface AssemblerOptions {
  /** How long a trace must stay quiet after its entry span arrived before it is final. @default 150 */
  settleMs?: number;
  /** A trace (or transaction) still incomplete after this long is emitted as it is. @default 30000 */
  maxWaitMs?: number;
  /** Most traces held at once; the oldest is emitted incomplete when more arrive. @default 5000 */
  maxOpenTraces?: number;
  /** Most spans one trace holds; later ones are dropped (counted in `droppedSpans`). @default 2000 */
  maxSpansPerTrace?: number;
}

interface OpenTrace {
  traceId: string;
  /** The transaction its spans name, once one arrived. */
  txId: string | null;
  spans: SpanRecord[];
  spanIds: Set<string>;
  firstSeenMs: number;
  lastSeenMs: number;
}

interface OpenTransaction {
  txId: string;
  traces: OpenTrace[];
  firstSeenMs: number;
  /** The trace that ended it is final; it is emitted once no other trace of it is still open. */
  ended: boolean;
  settled: boolean;
}

/**
 * Groups spans arriving in any order (several processes append to one file, or post to one OTLP
 * receiver) into traces, and traces into transactions: an interactive transaction is one trace per
 * request (Begin, each Execute, Commit), linked by the `mycelium.tx_id` attribute.
 *
 * A trace is final when its entry span — a span whose parent is not in the trace, that is not a client
 * span, and whose time covers every span received — has arrived and nothing more came for settleMs.
 * (Children end before their parents, so the entry span comes last.) A transaction is final when the
 * trace carrying `mycelium.tx_outcome` is final. Everything is bounded: traces and transactions that
 * never finish are emitted incomplete after maxWaitMs, and at most maxOpenTraces are held.
 */
export class TraceAssembler {
  private readonly settleMs: number;
  private readonly maxWaitMs: number;
  private readonly maxOpenTraces: number;
  private readonly maxSpansPerTrace: number;
  private readonly traces = new Map<string, OpenTrace>();
  private readonly transactions = new Map<string, OpenTransaction>();
  /** Traces already emitted (bounded): a straggler of one is dropped, not shown as a new trace. */
  private readonly emittedTraceIds = new Set<string>();
  droppedSpans = 0;
  lateSpans = 0;

  constructor(options: AssemblerOptions = {}) {
    this.settleMs = options.settleMs ?? 150;
    this.maxWaitMs = options.maxWaitMs ?? 30_000;
    this.maxOpenTraces = options.maxOpenTraces ?? 5000;
    this.maxSpansPerTrace = options.maxSpansPerTrace ?? 2000;
    if (this.settleMs < 0 || this.maxWaitMs <= 0 || this.maxOpenTraces < 1 || this.maxSpansPerTrace < 1) throw new RangeError("assembler bounds must be positive");
  }

  /** Take one span; returns what became final because the bound on open traces was reached. */
  add(span: SpanRecord, nowMs: number): AssembledTransaction[] {
    if (this.emittedTraceIds.has(span.traceId)) {
      this.lateSpans++;
      return [];
    }
    let open = this.traces.get(span.traceId);
    if (!open) {
      open = { traceId: span.traceId, txId: null, spans: [], spanIds: new Set(), firstSeenMs: nowMs, lastSeenMs: nowMs };
      this.traces.set(span.traceId, open);
    }
    if (open.spanIds.has(span.spanId)) return [];
    if (open.spans.length >= this.maxSpansPerTrace) {
      this.droppedSpans++;
      return [];
    }
    open.spans.push(span);
    open.spanIds.add(span.spanId);
    const txId = span.attributes[attributeNames.txId];
    if (open.txId === null && typeof txId === "string" && txId !== "") open.txId = txId;
    open.lastSeenMs = nowMs;
    const emitted: AssembledTransaction[] = [];
    while (this.traces.size > this.maxOpenTraces) {
      const oldest = this.traces.values().next().value as OpenTrace;
      emitted.push(...this.finishTrace(oldest, false));
    }
    return emitted;
  }

  /** Everything that became final by now, oldest first. */
  poll(nowMs: number): AssembledTransaction[] {
    const emitted: AssembledTransaction[] = [];
    for (const open of [...this.traces.values()]) {
      const settled = nowMs - open.lastSeenMs >= this.settleMs && hasEntrySpan(open.spans);
      const expired = nowMs - open.firstSeenMs >= this.maxWaitMs;
      if (settled || expired) emitted.push(...this.finishTrace(open, settled));
    }
    for (const tx of [...this.transactions.values()]) {
      if (tx.ended && !this.hasOpenTrace(tx.txId)) {
        this.transactions.delete(tx.txId);
        emitted.push(assemble(tx.txId, tx.traces, tx.settled));
      } else if (nowMs - tx.firstSeenMs >= this.maxWaitMs) {
        this.transactions.delete(tx.txId);
        emitted.push(assemble(tx.txId, tx.traces, false));
      }
    }
    return emitted;
  }

  /** Emit everything held (at the end of `traces show`, or when the tail stops). */
  flush(): AssembledTransaction[] {
    const emitted: AssembledTransaction[] = [];
    for (const open of [...this.traces.values()]) emitted.push(...this.finishTrace(open, hasEntrySpan(open.spans)));
    for (const tx of [...this.transactions.values()]) emitted.push(assemble(tx.txId, tx.traces, false));
    this.transactions.clear();
    return emitted;
  }

  get openTraceCount(): number {
    return this.traces.size;
  }

  private finishTrace(open: OpenTrace, settled: boolean): AssembledTransaction[] {
    this.traces.delete(open.traceId);
    this.emittedTraceIds.add(open.traceId);
    if (this.emittedTraceIds.size > this.maxOpenTraces * 4) this.emittedTraceIds.delete(this.emittedTraceIds.values().next().value as string);
    const txId = open.txId;
    if (txId === null) return [assemble(null, [open], settled)];
    let tx = this.transactions.get(txId);
    if (!tx) {
      tx = { txId, traces: [], firstSeenMs: open.firstSeenMs, ended: false, settled: true };
      this.transactions.set(txId, tx);
      while (this.transactions.size > this.maxOpenTraces) {
        const oldest = this.transactions.values().next().value as OpenTransaction;
        this.transactions.delete(oldest.txId);
      }
    }
    tx.traces.push(open);
    tx.settled &&= settled;
    // The trace that ended the transaction closes it, once the traces of its earlier requests are final
    // too (a participant's span of an earlier request can arrive after the commit's, from another process).
    if (attributeOf(open.spans, attributeNames.outcome) !== null) tx.ended = true;
    if (!tx.ended || this.hasOpenTrace(txId)) return [];
    this.transactions.delete(txId);
    return [assemble(txId, tx.traces, tx.settled)];
  }

  private hasOpenTrace(txId: string): boolean {
    for (const open of this.traces.values()) if (open.txId === txId) return true;
    return false;
  }
}

function assemble(txId: string | null, traces: OpenTrace[], complete: boolean): AssembledTransaction {
  const spans = traces.flatMap((t) => t.spans).sort((a, b) => a.startTimeMs - b.startTimeMs);
  const outcome = attributeOf(spans, attributeNames.outcome);
  return {
    txId,
    // In the order the requests started.
    traceIds: [...new Set([...traces].sort((a, b) => startOf(a.spans) - startOf(b.spans)).map((t) => t.traceId))],
    spans,
    outcome: outcome === "committed" || outcome === "aborted" ? outcome : "unknown",
    complete,
  };
}

function startOf(spans: readonly SpanRecord[]): number {
  return Math.min(...spans.map((s) => s.startTimeMs));
}

/** The first value of an attribute on any span, as a string (null when no span has it). */
export function attributeOf(spans: readonly SpanRecord[], name: string): string | null {
  for (const span of spans) {
    const value = span.attributes[name];
    if (value !== undefined && value !== null && value !== "") return Array.isArray(value) ? value.join(",") : String(value);
  }
  return null;
}

/** Every value of an attribute across spans (array values spread), deduplicated, in order. */
export function attributeValues(spans: readonly SpanRecord[], name: string): string[] {
  const values: string[] = [];
  for (const span of spans) {
    const value = span.attributes[name];
    if (value === undefined || value === null || value === "") continue;
    for (const item of Array.isArray(value) ? value : [value]) if (!values.includes(String(item))) values.push(String(item));
  }
  return values;
}

/** Spans whose parent is not among the spans: the tops of the received part of the tree. */
export function topSpans(spans: readonly SpanRecord[]): SpanRecord[] {
  const ids = new Set(spans.map((s) => s.spanId));
  return spans.filter((s) => !s.parentSpanId || !ids.has(s.parentSpanId));
}

/** Whether the span that entered the trace has arrived (see TraceAssembler). */
export function hasEntrySpan(spans: readonly SpanRecord[]): boolean {
  if (spans.length === 0) return false;
  const start = Math.min(...spans.map((s) => s.startTimeMs));
  const end = Math.max(...spans.map((s) => s.startTimeMs + s.durationMs));
  // Start times come at millisecond resolution (durations finer), so a child may seem to start or end up
  // to a millisecond outside its parent.
  const slackMs = 1;
  return topSpans(spans).some((s) => (!s.parentSpanId || s.kind !== SpanKind.client) && s.startTimeMs <= start + slackMs && s.startTimeMs + s.durationMs >= end - slackMs);
}
