import type { SpanRecord } from "@mycelium/telemetry";
import { attributeNames, attributeOf, attributeValues, type AssembledTransaction } from "./span-assembly";

/** One line of a waterfall: a span at its depth in the tree, placed on the transaction's time axis. */
export interface WaterfallRow {
  span: SpanRecord;
  depth: number;
  /** Milliseconds from the start of the transaction's first span. */
  offsetMs: number;
  durationMs: number;
  /** Who ran it: "coordinator", "node-agent v1", ... */
  who: string;
  /** The span name plus what it worked on (a shard, tables). */
  label: string;
  /** Bar cells [start, end) within `width` columns; end > start always (at least one cell). */
  barStart: number;
  barEnd: number;
  error: string | null;
}

export interface WaterfallLayout {
  startMs: number;
  totalMs: number;
  width: number;
  rows: WaterfallRow[];
}

/** How a service instance is named: node ids of node-agents become their local names (v1, m1). */
export type InstanceNames = (instance: string) => string | undefined;

/** OpenTelemetry's status code of a failed span. */
const ERROR = 2;

/**
 * Lay a transaction's spans out as a tree on one time axis: each span under its parent (spans whose
 * parent is missing start a tree of their own), siblings in start order, bars scaled to `width` cells.
 */
export function layoutWaterfall(spans: readonly SpanRecord[], width: number, names: InstanceNames = () => undefined): WaterfallLayout {
  if (!Number.isInteger(width) || width < 1) throw new RangeError(`width must be a positive integer, got ${width}`);
  if (spans.length === 0) return { startMs: 0, totalMs: 0, width, rows: [] };
  const startMs = Math.min(...spans.map((s) => s.startTimeMs));
  const endMs = Math.max(...spans.map((s) => s.startTimeMs + s.durationMs));
  const totalMs = Math.max(endMs - startMs, 0);
  const ids = new Set(spans.map((s) => s.spanId));
  const children = new Map<string, SpanRecord[]>();
  const roots: SpanRecord[] = [];
  for (const span of spans) {
    if (span.parentSpanId && ids.has(span.parentSpanId) && span.parentSpanId !== span.spanId) {
      children.set(span.parentSpanId, [...(children.get(span.parentSpanId) ?? []), span]);
    } else {
      roots.push(span);
    }
  }
  const byStart = (a: SpanRecord, b: SpanRecord) => a.startTimeMs - b.startTimeMs || b.durationMs - a.durationMs || a.spanId.localeCompare(b.spanId);
  const rows: WaterfallRow[] = [];
  const visited = new Set<string>();
  const visit = (span: SpanRecord, depth: number) => {
    // A malformed file could make a cycle; each span is shown once.
    if (visited.has(span.spanId)) return;
    visited.add(span.spanId);
    rows.push(row(span, depth, startMs, totalMs, width, names));
    for (const child of (children.get(span.spanId) ?? []).sort(byStart)) visit(child, depth + 1);
  };
  for (const root of roots.sort(byStart)) visit(root, 0);
  return { startMs, totalMs, width, rows };
}

function row(span: SpanRecord, depth: number, startMs: number, totalMs: number, width: number, names: InstanceNames): WaterfallRow {
  const offsetMs = span.startTimeMs - startMs;
  // Fractions of the whole first: a tiny total would make width / totalMs overflow to Infinity.
  const fraction = (ms: number) => (totalMs > 0 ? Math.min(1, Math.max(0, ms / totalMs)) : 0);
  const barStart = Math.min(width - 1, Math.floor(fraction(offsetMs) * width));
  const barEnd = Math.min(width, Math.max(barStart + 1, Math.ceil(fraction(offsetMs + span.durationMs) * width)));
  return {
    span,
    depth,
    offsetMs,
    durationMs: span.durationMs,
    who: whoRan(span, names),
    label: labelOf(span),
    barStart,
    barEnd,
    error: span.status.code === ERROR ? span.status.message || "error" : null,
  };
}

export function whoRan(span: SpanRecord, names: InstanceNames): string {
  if (!span.instance || span.instance === span.service) return span.service;
  return `${span.service} ${names(span.instance) ?? span.instance.slice(0, 8)}`;
}

function labelOf(span: SpanRecord): string {
  const shard = span.attributes[attributeNames.shardId];
  const tables = span.attributes[attributeNames.tables];
  const extra = shard ? ` ${String(shard)}` : Array.isArray(tables) && tables.length > 0 ? ` ${tables.join(",")}` : "";
  return span.name + extra;
}

/** The participants of a transaction: each shard a node-agent worked on, with that node. */
export function participantsOf(spans: readonly SpanRecord[], names: InstanceNames): Array<{ shardId: string; node: string }> {
  const seen = new Map<string, string>();
  for (const span of spans) {
    const shard = span.attributes[attributeNames.shardId];
    if (span.service !== "node-agent" || typeof shard !== "string" || seen.has(shard)) continue;
    seen.set(shard, span.instance ? (names(span.instance) ?? span.instance.slice(0, 8)) : "?");
  }
  return [...seen].sort(([a], [b]) => a.localeCompare(b)).map(([shardId, node]) => ({ shardId, node }));
}

export interface RenderOptions {
  /** Columns of the bar. @default 40 */
  barWidth?: number;
  /** ANSI colours (errors red, services dimmed). @default false */
  color?: boolean;
  names?: InstanceNames;
}

/** Milliseconds as people read them: 0.42 ms, 12.3 ms, 1.52 s. */
export function formatDuration(ms: number): string {
  if (ms < 1) return `${ms.toFixed(2)} ms`;
  if (ms < 100) return `${ms.toFixed(1)} ms`;
  if (ms < 1000) return `${Math.round(ms)} ms`;
  return `${(ms / 1000).toFixed(2)} s`;
}

/** The header line and the waterfall of one transaction, as text lines. */
export function renderTransaction(tx: AssembledTransaction, options: RenderOptions = {}): string[] {
  const names = options.names ?? (() => undefined);
  const color = options.color ?? false;
  const paint = (code: string, text: string) => (color ? `\u001b[${code}m${text}\u001b[0m` : text);
  const layout = layoutWaterfall(tx.spans, options.barWidth ?? 40, names);
  const tables = attributeValues(tx.spans, attributeNames.tables);
  const commitKind = attributeOf(tx.spans, attributeNames.commitKind);
  const errors = layout.rows.filter((r) => r.error !== null).length;
  const outcome = tx.outcome === "committed" ? paint("32", "committed") : tx.outcome === "aborted" ? paint("31", "aborted") : "outcome unknown";
  const head = [
    tx.txId ? `tx ${tx.txId}` : `trace ${tx.traceIds[0] ?? "?"}`,
    tx.txId ? outcome + (commitKind ? ` (${commitKind.replace("_", "-")})` : "") : null,
    formatDuration(layout.totalMs),
    tables.length > 0 ? `tables ${tables.join(", ")}` : null,
    errors > 0 ? paint("31", `${errors} error${errors === 1 ? "" : "s"}`) : null,
    tx.complete ? null : paint("33", "incomplete: not every span arrived"),
  ].filter((part): part is string => part !== null);
  const lines = [head.join(" · ")];
  lines.push(`  trace${tx.traceIds.length === 1 ? "" : "s"} ${tx.traceIds.join(", ")}`);
  const participants = participantsOf(tx.spans, names);
  if (participants.length > 0) lines.push(`  participants ${participants.map((p) => `${p.shardId}@${p.node}`).join(", ")}`);
  const whoWidth = Math.min(24, Math.max(...layout.rows.map((r) => r.who.length)));
  const labelWidth = Math.min(56, Math.max(...layout.rows.map((r) => r.depth * 2 + r.label.length)));
  for (const r of layout.rows) {
    const bar = " ".repeat(r.barStart) + "█".repeat(r.barEnd - r.barStart) + " ".repeat(layout.width - r.barEnd);
    const label = ("  ".repeat(r.depth) + r.label).slice(0, labelWidth).padEnd(labelWidth);
    const who = r.who.slice(0, whoWidth).padEnd(whoWidth);
    const line = `  ${paint("2", who)}  ${label}  │${r.error ? paint("31", bar) : bar}│ ${formatDuration(r.durationMs).padStart(9)}`;
    lines.push(r.error ? `${line}  ${paint("31", `✗ ${r.error}`)}` : line);
  }
  return lines;
}

/** Whether a transaction passes the tail's filters. */
export interface TransactionFilter {
  /** Only transactions (spans with a transaction id); false shows every trace. @default true */
  transactionsOnly?: boolean;
  /** Only those that took at least this long. */
  slowerThanMs?: number;
  /** Only those with a failed span or an aborted outcome. */
  errorsOnly?: boolean;
  /** Only those touching this table. */
  table?: string;
}

export function passesFilter(tx: AssembledTransaction, filter: TransactionFilter): boolean {
  if ((filter.transactionsOnly ?? true) && tx.txId === null) return false;
  if (filter.slowerThanMs !== undefined) {
    const start = Math.min(...tx.spans.map((s) => s.startTimeMs));
    const end = Math.max(...tx.spans.map((s) => s.startTimeMs + s.durationMs));
    if (end - start < filter.slowerThanMs) return false;
  }
  if (filter.errorsOnly && tx.outcome !== "aborted" && !tx.spans.some((s) => s.status.code === ERROR)) return false;
  if (filter.table !== undefined) {
    const tables = attributeValues(tx.spans, attributeNames.tables);
    const shardTables = attributeValues(tx.spans, attributeNames.shardId).map((id) => id.replace(/-\d+$/, ""));
    if (!tables.includes(filter.table) && !shardTables.includes(filter.table)) return false;
  }
  return true;
}

/** Whether `id` names this transaction: its transaction id, or one of its traces (a prefix is enough). */
export function matchesId(tx: AssembledTransaction, id: string): boolean {
  const wanted = id.toLowerCase();
  if (wanted.length === 0) return false;
  return (tx.txId !== null && tx.txId.toLowerCase().startsWith(wanted)) || tx.traceIds.some((t) => t.toLowerCase().startsWith(wanted));
}

