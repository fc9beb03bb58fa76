import type { SpanRecord } from "@mycelium/telemetry";
import { attributeNames, TraceAssembler, type AssembledTransaction, type AssemblerOptions } from "./core/span-assembly";
import { matchesId, passesFilter, type TransactionFilter } from "./core/waterfall";
import { startOtlpReceiver, type OtlpReceiver } from "./otlp-receiver";
import { readTraceFile, TraceFileFollower } from "./trace-file-follower";

export interface TraceTailOptions {
  /** Follow this JSON-lines trace file (from its end). */
  file?: string;
  /** Also receive OTLP/HTTP exports here. */
  otlp?: { host: string; port: number };
  filter?: TransactionFilter;
  assembler?: AssemblerOptions;
  /** How often finished traces are looked for. @default 50 */
  pollIntervalMs?: number;
  onTransaction: (tx: AssembledTransaction) => void;
  onError?: (error: Error) => void;
}

export interface TraceTail {
  receiver: OtlpReceiver | null;
  /** Stop following; what is still held is emitted (incomplete) first. */
  stop(): Promise<void>;
}

/** Follow spans from a trace file and/or an OTLP receiver and hand over each finished transaction. */
export async function startTraceTail(options: TraceTailOptions): Promise<TraceTail> {
  if (!options.file && !options.otlp) throw new Error("nothing to follow: give a trace file or an OTLP address");
  const assembler = new TraceAssembler(options.assembler);
  const emit = (finished: AssembledTransaction[]) => {
    for (const tx of finished) if (passesFilter(tx, options.filter ?? {})) options.onTransaction(tx);
  };
  const take = (spans: SpanRecord[]) => {
    const now = Date.now();
    for (const span of spans) emit(assembler.add(span, now));
  };
  const follower = options.file ? new TraceFileFollower({ path: options.file, onSpans: take, ...(options.onError ? { onError: options.onError } : {}) }).start() : null;
  let receiver: OtlpReceiver | null = null;
  try {
    receiver = options.otlp ? await startOtlpReceiver({ ...options.otlp, onSpans: take, ...(options.onError ? { onError: options.onError } : {}) }) : null;
  } catch (error) {
    follower?.stop();
    throw error;
  }
  const timer = setInterval(() => emit(assembler.poll(Date.now())), options.pollIntervalMs ?? 50);
  return {
    receiver,
    async stop() {
      clearInterval(timer);
      follower?.stop();
      await receiver?.close();
      emit(assembler.flush());
    },
  };
}

/**
 * The transaction a transaction id or trace id (or a prefix of one) names, from a whole trace file:
 * every trace carrying the transaction's id, so an interactive transaction shows all its requests.
 */
export async function findTransaction(file: string, id: string): Promise<AssembledTransaction | null> {
  const wanted = id.toLowerCase();
  // First pass: which traces belong (by trace id, or by a span carrying the transaction id).
  const traceIds = new Set<string>();
  const txIds = new Set<string>();
  await readTraceFile(file, (span) => {
    const txId = span.attributes[attributeNames.txId];
    if (span.traceId.startsWith(wanted)) {
      traceIds.add(span.traceId);
      if (typeof txId === "string") txIds.add(txId);
    }
    if (typeof txId === "string" && txId.toLowerCase().startsWith(wanted)) {
      traceIds.add(span.traceId);
      txIds.add(txId);
    }
  });
  if (traceIds.size === 0) return null;
  // A trace id found the transaction; its other requests' traces carry the same transaction id.
  const spans: SpanRecord[] = [];
  await readTraceFile(file, (span) => {
    const txId = span.attributes[attributeNames.txId];
    if (typeof txId === "string" && txIds.has(txId)) traceIds.add(span.traceId);
  });
  await readTraceFile(file, (span) => {
    if (traceIds.has(span.traceId)) spans.push(span);
  });
  const assembler = new TraceAssembler({ maxWaitMs: Number.MAX_SAFE_INTEGER, maxOpenTraces: Math.max(traceIds.size, 1), maxSpansPerTrace: 100_000 });
  for (const span of spans) assembler.add(span, 0);
  const found = assembler.flush().filter((tx) => matchesId(tx, wanted));
  if (found.length === 0) return null;
  // Several pieces of one transaction (none ended it yet): show them together.
  const first = found[0]!;
  return {
    ...first,
    traceIds: [...new Set(found.flatMap((tx) => tx.traceIds))],
    spans: found.flatMap((tx) => tx.spans).sort((a, b) => a.startTimeMs - b.startTimeMs),
    complete: found.every((tx) => tx.complete),
  };
}
