/**
 * What the dashboard server sends the page: one self-contained picture of the cluster, sent on every
 * refresh over server-sent events. Plain JSON (no bigints, no protobuf types), shared by the server
 * and the web app, so the page never needs a second request to draw any view.
 */

export type NodeStatusName = "up" | "suspect" | "down" | "drained" | "unknown";

export interface NodeView {
  nodeId: string;
  /** The local cluster's short name (v1, m1, ...) when the console knows it. */
  name: string;
  type: "validator" | "miner" | "unknown";
  status: NodeStatusName;
  address: string;
  /** Milliseconds since the router last heard a heartbeat. */
  heartbeatAgeMs: number;
  /** Shard copies placed on the node, and how many of them are primaries. */
  shardCount: number;
  primaryCount: number;
  storedBytes: number;
  /** Load, from the node itself (GetStatus) and its /metrics; null when it did not answer. */
  openTransactions: number | null;
  preparedTransactions: number | null;
  statementsPerSecond: number | null;
  weight: number;
}

export type ChecksumState = "match" | "mismatch" | "behind" | "unknown";

export interface ReplicaView {
  nodeId: string;
  nodeName: string;
  primary: boolean;
  appliedLsn: number;
  /** -1 when the replicator does not know the copy's position. */
  lagEntries: number;
  lagMs: number;
  state: string;
  checksum: ChecksumState;
}

export interface ShardView {
  shardId: string;
  table: string;
  index: number;
  state: string;
  epoch: number;
  primaryNodeId: string;
  primaryName: string;
  keyRange: string;
  sizeBytes: number;
  headLsn: number | null;
  failovers: number;
  /** Highest lag of any secondary, ms (null: unknown). */
  lagMsMax: number | null;
  replicas: ReplicaView[];
  /** Worst checksum state of the shard's secondaries, and when it was compared. */
  checksum: ChecksumState;
  checksumCheckedAtMs: number;
}

/** A table's sharding policy as the pages show it. */
export interface TablePolicyView {
  table: string;
  shardKeys: string[];
  shardFunction: string;
  replicationFactor: number | null;
  minValidatorCopies: number | null;
  validatorOnly: boolean;
  syncReplicas: number;
  colocationGroup: string;
  version: number;
}

export interface TableView extends TablePolicyView {
  shards: ShardView[];
}

export interface ParticipantView {
  shardId: string;
  nodeId: string;
  nodeName: string;
  /** Acknowledged the decision. */
  done: boolean;
  /** Holds the transaction prepared right now (from the node's own list). */
  prepared: boolean;
  statements: string[];
  error: string;
}

export interface InDoubtView {
  txId: string;
  /** decided: the coordinator recorded a decision not yet acknowledged everywhere (resolve = deliver it
   * again); undecided: participants hold it prepared and no coordinator recorded anything. */
  kind: "decided" | "undecided";
  decision: "commit" | "abort" | "none";
  coordinatorId: string;
  /** When it was decided, or when its oldest participant prepared. */
  sinceMs: number;
  participants: ParticipantView[];
}

export interface RecentTransaction {
  txId: string;
  /** The last state the event stream reported (active, preparing, committing, committed, aborted...). */
  state: string;
  outcome: "committed" | "aborted" | "open";
  startedAtMs: number;
  durationMs: number | null;
}

export interface PhaseLatency {
  phase: string;
  p50Ms: number | null;
  p99Ms: number | null;
  count: number;
}

export interface ConflictView {
  conflictId: string;
  shardId: string;
  originNodeId: string;
  originName: string;
  status: string;
  detectedAtMs: number;
  reasons: string[];
}

/** Shard moves and splits (the rebalancer). `available: false` until a rebalancer reports them. */
export interface MovesView {
  available: boolean;
  /** Why there is nothing to show, for the page. */
  reason: string;
  moves: MoveView[];
}

export interface MoveView {
  moveId: string;
  shardId: string;
  kind: "move" | "split";
  fromNodeId: string;
  toNodeId: string;
  phase: string;
  /** 0..1 */
  progress: number;
  startedAtMs: number;
}

/** Columns of numbers with a shared time axis (seconds), as uPlot draws them. */
export interface SeriesSet {
  /** Seconds since the epoch. */
  times: number[];
  series: Array<{ label: string; values: Array<number | null> }>;
}

export interface SourceError {
  /** What was asked: "router ListNodes", "metrics coordinator", ... */
  source: string;
  message: string;
}

export interface ConsoleSnapshot {
  atMs: number;
  networkId: string;
  refreshMs: number;
  nodes: NodeView[];
  tables: TableView[];
  transactions: {
    committedPerSecond: number | null;
    abortedPerSecond: number | null;
    active: number | null;
    inDoubtGauge: number | null;
    phases: PhaseLatency[];
    inDoubt: InDoubtView[];
    recent: RecentTransaction[];
  };
  conflicts: ConflictView[];
  moves: MovesView;
  charts: {
    throughput: SeriesSet;
    latency: SeriesSet;
    lag: SeriesSet;
  };
  errors: SourceError[];
}

/** Who the page is talking as. */
export interface SessionView {
  role: "admin" | "viewer" | "none";
  /** How the role was established: a client certificate, a signed-in token, or loopback access. */
  via: "certificate" | "token" | "loopback" | "none";
  identity: string;
  /** Whether signing in with the admin token is possible here. */
  tokenSignIn: boolean;
}
