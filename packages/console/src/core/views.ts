import type { ChecksumState, InDoubtView, NodeStatusName, NodeView, ParticipantView, ReplicaView, ShardView, TablePolicyView, TableView } from "./snapshot";

/*
 * The pages' views, built from what the cluster's admin APIs answer. The inputs are narrow plain
 * records (the adapter converts the protobuf messages), so this file is pure and the web app can share
 * its types.
 */

export interface NodeInput {
  nodeId: string;
  type: NodeView["type"];
  status: NodeStatusName;
  address: string;
  lastHeartbeatAtMs: number;
  shardCount: number;
  storedBytes: number;
  weight: number;
}

export interface NodeLoadInput {
  openTransactions: number | null;
  preparedTransactions: number | null;
  statementsPerSecond: number | null;
}

export type ShardInput = Pick<ShardView, "shardId" | "table" | "index" | "state" | "epoch" | "primaryNodeId" | "sizeBytes" | "keyRange"> & {
  /** Every copy, the primary first. */
  replicaNodeIds: string[];
};

export interface ReplicationInput {
  shardId: string;
  headLsn: number;
  failovers: number;
  replicas: Array<{ nodeId: string; primary: boolean; appliedLsn: number; lagEntries: number; lagMs: number; state: string }>;
}

export type PolicyInput = TablePolicyView;

/** A copy's checksum compared with its primary's at the copy's position. */
export interface ChecksumResult {
  state: ChecksumState;
  checkedAtMs: number;
}

/** How a node is named on the pages: its local name (v1, m1) when known, else the start of its id. */
export type NodeNames = (nodeId: string) => string;

export function nodeNamesFrom(names: ReadonlyMap<string, string>): NodeNames {
  return (nodeId) => names.get(nodeId) ?? (nodeId ? nodeId.slice(0, 8) : "—");
}

export function buildNodeViews(nodes: readonly NodeInput[], loads: ReadonlyMap<string, NodeLoadInput>, shards: readonly ShardInput[], names: NodeNames, nowMs: number): NodeView[] {
  const primaries = new Map<string, number>();
  for (const shard of shards) if (shard.primaryNodeId) primaries.set(shard.primaryNodeId, (primaries.get(shard.primaryNodeId) ?? 0) + 1);
  return [...nodes]
    .sort((a, b) => (a.type === b.type ? names(a.nodeId).localeCompare(names(b.nodeId)) : a.type === "validator" ? -1 : 1))
    .map((node) => {
      const load = loads.get(node.nodeId);
      return {
        nodeId: node.nodeId,
        name: names(node.nodeId),
        type: node.type,
        status: node.status,
        address: node.address,
        heartbeatAgeMs: node.lastHeartbeatAtMs > 0 ? Math.max(0, nowMs - node.lastHeartbeatAtMs) : -1,
        shardCount: node.shardCount,
        primaryCount: primaries.get(node.nodeId) ?? 0,
        storedBytes: node.storedBytes,
        openTransactions: load?.openTransactions ?? null,
        preparedTransactions: load?.preparedTransactions ?? null,
        statementsPerSecond: load?.statementsPerSecond ?? null,
        weight: node.weight,
      };
    });
}

/** Worst first: a mismatch outranks a copy behind, which outranks one never compared. */
const checksumRank: Record<ChecksumState, number> = { mismatch: 3, unknown: 2, behind: 1, match: 0 };

export function worstChecksum(states: readonly ChecksumState[]): ChecksumState {
  return states.reduce<ChecksumState>((worst, state) => (checksumRank[state] > checksumRank[worst] ? state : worst), "match");
}

/**
 * Compare a secondary with its primary. The primary answers its checksum at the secondary's applied
 * position; equal means the copy holds exactly what the primary held then.
 */
export function compareChecksum(secondary: { appliedLsn: number; checksum: string }, primary: { checksumAtLsn: string } | null): ChecksumState {
  // Nothing applied yet: nothing that could differ.
  if (secondary.appliedLsn === 0) return "match";
  if (!primary || !secondary.checksum) return "unknown";
  // The primary's log no longer reaches back to that position (truncated): nothing to compare.
  if (!primary.checksumAtLsn) return "behind";
  return primary.checksumAtLsn === secondary.checksum ? "match" : "mismatch";
}

export function buildTableViews(
  policies: readonly PolicyInput[],
  shards: readonly ShardInput[],
  replication: ReadonlyMap<string, ReplicationInput>,
  checksums: ReadonlyMap<string, ReadonlyMap<string, ChecksumResult>>,
  names: NodeNames,
): TableView[] {
  const byTable = new Map<string, ShardInput[]>();
  for (const shard of shards) byTable.set(shard.table, [...(byTable.get(shard.table) ?? []), shard]);
  const tables = new Map<string, PolicyInput>(policies.map((p) => [p.colocationGroup || p.table, p]));
  for (const table of byTable.keys()) {
    if (!tables.has(table)) {
      tables.set(table, { table, shardKeys: [], shardFunction: "?", replicationFactor: null, minValidatorCopies: null, validatorOnly: false, syncReplicas: 0, colocationGroup: "", version: 0 });
    }
  }
  // Several policies share one colocation group's shards: list each table, each with the group's shards.
  const views: TableView[] = [];
  for (const policy of [...policies, ...[...tables.values()].filter((p) => !policies.includes(p))]) {
    const group = policy.colocationGroup || policy.table;
    const shardViews = (byTable.get(group) ?? []).sort((a, b) => a.index - b.index).map((shard) => buildShardView(shard, replication.get(shard.shardId), checksums.get(shard.shardId), names));
    views.push({ ...policy, shards: shardViews });
  }
  return views.sort((a, b) => a.table.localeCompare(b.table));
}

function buildShardView(shard: ShardInput, replication: ReplicationInput | undefined, checksums: ReadonlyMap<string, ChecksumResult> | undefined, names: NodeNames): ShardView {
  const replicas: ReplicaView[] = shard.replicaNodeIds.map((nodeId) => {
    const position = replication?.replicas.find((r) => r.nodeId === nodeId);
    const primary = nodeId === shard.primaryNodeId;
    return {
      nodeId,
      nodeName: names(nodeId),
      primary,
      appliedLsn: position?.appliedLsn ?? 0,
      lagEntries: position ? position.lagEntries : -1,
      lagMs: position?.lagMs ?? 0,
      state: position?.state ?? (primary ? "primary" : "unknown"),
      checksum: primary ? "match" : (checksums?.get(nodeId)?.state ?? "unknown"),
    };
  });
  const secondaries = replicas.filter((r) => !r.primary);
  const lags = secondaries.filter((r) => r.lagEntries >= 0).map((r) => r.lagMs);
  const checkedAt = [...(checksums?.values() ?? [])].map((c) => c.checkedAtMs);
  return {
    shardId: shard.shardId,
    table: shard.table,
    index: shard.index,
    state: shard.state,
    epoch: shard.epoch,
    primaryNodeId: shard.primaryNodeId,
    primaryName: names(shard.primaryNodeId),
    keyRange: shard.keyRange,
    sizeBytes: shard.sizeBytes,
    headLsn: replication ? replication.headLsn : null,
    failovers: replication?.failovers ?? 0,
    lagMsMax: replication && lags.length === secondaries.length && lags.length > 0 ? Math.max(...lags) : replication && secondaries.length === 0 ? 0 : null,
    replicas,
    checksum: secondaries.length === 0 ? "match" : worstChecksum(secondaries.map((r) => r.checksum)),
    checksumCheckedAtMs: checkedAt.length > 0 ? Math.min(...checkedAt) : 0,
  };
}

export interface DecidedInput {
  txId: string;
  decision: "commit" | "abort" | "none";
  coordinatorId: string;
  decidedAtMs: number;
  startedAtMs: number;
  participants: Array<{ shardId: string; nodeId: string; done: boolean; statements: string[]; error: string }>;
}

export interface PreparedInput {
  nodeId: string;
  txId: string;
  shardId: string;
  preparedAtMs: number;
  statements: string[];
}

/**
 * In-doubt transactions: the coordinator's decided-but-unacknowledged ones, and transactions that
 * participants hold prepared with no decision anywhere for longer than `minAgeMs` (younger ones are
 * normal two-phase commits in flight).
 */
export function buildInDoubtViews(decided: readonly DecidedInput[], prepared: readonly PreparedInput[], names: NodeNames, nowMs: number, minAgeMs: number): InDoubtView[] {
  const preparedKeys = new Set(prepared.map((p) => `${p.txId}/${p.shardId}`));
  const views: InDoubtView[] = decided.map((t) => ({
    txId: t.txId,
    kind: "decided",
    decision: t.decision,
    coordinatorId: t.coordinatorId,
    sinceMs: t.decidedAtMs || t.startedAtMs,
    participants: t.participants.map(
      (p): ParticipantView => ({ shardId: p.shardId, nodeId: p.nodeId, nodeName: names(p.nodeId), done: p.done, prepared: preparedKeys.has(`${t.txId}/${p.shardId}`), statements: p.statements, error: p.error }),
    ),
  }));
  const known = new Set(decided.map((t) => t.txId));
  const undecided = new Map<string, PreparedInput[]>();
  for (const p of prepared) {
    if (known.has(p.txId)) continue;
    undecided.set(p.txId, [...(undecided.get(p.txId) ?? []), p]);
  }
  for (const [txId, parts] of undecided) {
    const since = Math.min(...parts.map((p) => p.preparedAtMs));
    if (nowMs - since < minAgeMs) continue;
    views.push({
      txId,
      kind: "undecided",
      decision: "none",
      coordinatorId: "",
      sinceMs: since,
      participants: parts
        .sort((a, b) => a.shardId.localeCompare(b.shardId))
        .map((p) => ({ shardId: p.shardId, nodeId: p.nodeId, nodeName: names(p.nodeId), done: false, prepared: true, statements: p.statements, error: "" })),
    });
  }
  return views.sort((a, b) => a.sinceMs - b.sinceMs || a.txId.localeCompare(b.txId));
}
