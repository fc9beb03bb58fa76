import { trace, type AttributeValue } from "@opentelemetry/api";

/**
 * Span attributes Mycelium sets so that a trace can be read as a transaction (`mycelium traces`):
 * which transaction, which tables and shards it touched, and how it ended. Names live here once, for
 * the services that set them and the tools that read them.
 */
export const spanAttributes = {
  /** The distributed transaction id; links a trace to `mycelium txn show` and back. */
  txId: "mycelium.tx_id",
  /** Tables a routed statement touches (string array). */
  tables: "mycelium.tables",
  /** The shard a node-agent span works on. */
  shardId: "mycelium.shard_id",
  /** Set on the span that ended the transaction: "committed" or "aborted". */
  txOutcome: "mycelium.tx_outcome",
  /** How it committed: one-phase, two-phase, read-only... (the coordinator's commit kind). */
  txCommitKind: "mycelium.tx_commit_kind",
  /** Participants of a two-phase commit. */
  participants: "mycelium.participants",
} as const;

/** Set attributes on the span active now, if any. Telemetry never throws. */
export function annotateActiveSpan(attributes: Record<string, AttributeValue>): void {
  try {
    trace.getActiveSpan()?.setAttributes(attributes);
  } catch {
    // A span that cannot take attributes is not worth failing a request for.
  }
}
