import { common, replicator } from "@mycelium/proto";
import { counterRate, histogramCount, histogramQuantile, SeriesBuffer, sumOf, type Scrape } from "../core/metric-series";
import type { MovesSource } from "../core/moves";
import { parsePrometheusText, type Sample } from "../core/prometheus-text";
import type { RecentTransactions } from "../core/recent-transactions";
import type { ConsoleSnapshot, PhaseLatency, SourceError } from "../core/snapshot";
import {
  buildInDoubtViews,
  buildNodeViews,
  buildTableViews,
  compareChecksum,
  nodeNamesFrom,
  type ChecksumResult,
  type DecidedInput,
  type NodeInput,
  type NodeLoadInput,
  type PolicyInput,
  type PreparedInput,
  type ReplicationInput,
  type ShardInput,
} from "../core/views";
import { conflictStatusNames, decisionName, describeKeyRange, nodeStatusName, nodeTypeName, shardStateName, type ClusterAdmin } from "./cluster-admin";
import { fetchMetricsText } from "./scrape";

/** A service's Prometheus endpoint. */
export interface MetricsTarget {
  role: "coordinator" | "shard-router" | "replicator" | "node-agent";
  /** Its name (coordinator, v1, ...); for node-agents, nodeId ties it to the node. */
  name: string;
  url: string;
  nodeId?: string;
}

export interface CollectorOptions {
  admin: ClusterAdmin;
  networkId: string;
  metricsTargets: readonly MetricsTarget[];
  /** Local names of nodes (node id → v1, m1). */
  nodeNames: ReadonlyMap<string, string>;
  refreshMs: number;
  /** Minutes of history the plots show. */
  historyMinutes: number;
  recent: RecentTransactions;
  moves: MovesSource;
  /** How often each shard's copies are compared by checksum. */
  checksumIntervalMs: number;
  /** Prepared transactions younger than this are two-phase commits in flight, not in doubt. */
  inDoubtMinAgeMs: number;
}

/** Seconds over which rates and latencies on the plots are computed (smooths single-scrape noise). */
const rateWindowMs = 5000;
/** The phase-latency table looks at the last minute. */
const phaseWindowMs = 60_000;
/** Shards whose lag is plotted: the ones with the most lag in the window. */
const lagLinesMax = 8;
/** Shards compared by checksum per refresh, so a large cluster is covered in rounds. */
const checksumShardsPerRound = 16;

/**
 * Asks the cluster for everything the pages show, once per refresh: the router (nodes, shards,
 * policies), the replicator (replication, conflicts), the coordinator (in-doubt), each node (its load
 * and prepared transactions) and every service's /metrics. Each source has a deadline shorter than
 * the refresh; one that fails is reported on the page and the rest is still shown.
 */
export class Collector {
  private readonly scrapes: Scrape[] = [];
  private readonly lastSamples = new Map<string, readonly Sample[]>();
  private readonly throughput: SeriesBuffer;
  private readonly latency: SeriesBuffer;
  private readonly lag: SeriesBuffer;
  private readonly checksums = new Map<string, Map<string, ChecksumResult>>();
  private checksumCursor = 0;
  private checksumRound: Promise<void> | null = null;
  private lastChecksumRoundAtMs = 0;

  constructor(private readonly options: CollectorOptions) {
    const points = Math.max(2, Math.ceil((options.historyMinutes * 60_000) / options.refreshMs));
    this.throughput = new SeriesBuffer(points);
    this.latency = new SeriesBuffer(points);
    this.lag = new SeriesBuffer(points);
  }

  /** The history kept for rates: enough scrapes to reach back over the phase window. */
  private get scrapesKept(): number {
    return Math.ceil(phaseWindowMs / this.options.refreshMs) + 2;
  }

  async collect(): Promise<ConsoleSnapshot> {
    const { admin, refreshMs } = this.options;
    const deadlineMs = Math.max(500, Math.min(refreshMs * 2, 3000));
    const errors: SourceError[] = [];
    const attempt = async <T>(source: string, work: () => Promise<T>, fallback: T): Promise<T> => {
      try {
        return await work();
      } catch (error) {
        errors.push({ source, message: error instanceof Error ? error.message : String(error) });
        return fallback;
      }
    };

    const [nodes, shards, policies, replication, conflicts, decided, , moves] = await Promise.all([
      attempt("shard-router ListNodes", () => admin.nodes(deadlineMs), [] as common.NodeInfo[]),
      attempt("shard-router ListShards", () => admin.shards("", deadlineMs), [] as common.ShardInfo[]),
      attempt("shard-router ListPolicies", () => admin.policies(deadlineMs), [] as common.TablePolicy[]),
      attempt("replicator ListReplication", () => admin.replication(deadlineMs), [] as replicator.ShardReplication[]),
      attempt("replicator ListConflicts", () => admin.conflicts(replicator.ConflictStatus.CONFLICT_STATUS_UNSPECIFIED, deadlineMs), [] as replicator.Conflict[]),
      attempt("coordinator ListInDoubt", () => admin.inDoubt(deadlineMs), null),
      this.scrapeAll(deadlineMs, errors),
      attempt("moves", () => this.options.moves.read(), { available: false, reason: "the moves source failed", moves: [] }),
    ]);

    // Each node that is not known to be down: its load and what it holds prepared.
    const reachable = nodes.filter((n) => n.status !== common.NodeStatus.NODE_STATUS_DOWN && n.status !== common.NodeStatus.NODE_STATUS_DRAINED && n.address);
    const perNode = await Promise.all(
      reachable.map(async (node) => {
        const name = this.options.nodeNames.get(node.nodeId) ?? node.nodeId.slice(0, 8);
        const [status, prepared] = await Promise.all([
          attempt(`node ${name} GetStatus`, () => admin.nodeStatus(node.address, deadlineMs), null),
          attempt(`node ${name} ListPrepared`, () => admin.nodePrepared(node.address, deadlineMs), null),
        ]);
        return { node, status, prepared };
      }),
    );

    const now = Date.now();
    const names = nodeNamesFrom(this.options.nodeNames);
    // The router's shard map may not have sizes yet; the nodes' own reports of their copies do.
    const copySizes = new Map<string, number>();
    for (const { status } of perNode) for (const copy of status?.replicas ?? []) copySizes.set(copy.shardId, Math.max(copySizes.get(copy.shardId) ?? 0, copy.sizeBytes));
    const shardInputs = shards.map((s) => ({ ...toShardInput(s), sizeBytes: s.sizeBytes || (copySizes.get(s.shardId) ?? 0) }));
    const replicationInputs = new Map(replication.map((r) => [r.shardId, toReplicationInput(r)]));
    this.maybeCompareChecksums(shardInputs, nodes);

    const loads = new Map<string, NodeLoadInput>();
    for (const { node, status } of perNode) {
      loads.set(node.nodeId, {
        openTransactions: status ? status.openTransactions : null,
        preparedTransactions: status ? status.preparedTransactions : null,
        statementsPerSecond: this.nodeStatementRate(node.nodeId),
      });
    }
    const prepared: PreparedInput[] = perNode.flatMap(({ node, prepared: list }) =>
      (list ?? []).map((p) => ({ nodeId: node.nodeId, txId: p.txId, shardId: p.shardId, preparedAtMs: p.preparedAtMs, statements: p.statements.map((s) => s.sql) })),
    );
    const decidedInputs: DecidedInput[] = (decided ?? []).map((t) => ({
      txId: t.txId,
      decision: decisionName(t.decision),
      coordinatorId: t.coordinatorId,
      decidedAtMs: t.decidedAtMs,
      startedAtMs: t.startedAtMs,
      participants: t.participants.map((p) => ({ shardId: p.shardId, nodeId: p.nodeId, done: p.done, statements: p.statements.map((s) => s.sql), error: p.error })),
    }));

    const tables = buildTableViews(policies.map(toPolicyInput), shardInputs, replicationInputs, this.checksums, names);
    for (const table of tables) for (const shard of table.shards) if (shard.lagMsMax !== null) this.lag.push(now, { [shard.shardId]: shard.lagMsMax });
    this.recordRates(now);

    return {
      atMs: now,
      networkId: this.options.networkId,
      refreshMs,
      // The router's record has stored bytes only as of the node's last report; the node's own answer is fresher.
      nodes: buildNodeViews(
        nodes.map((n) => ({ ...toNodeInput(n), storedBytes: Math.max(n.storedBytes, perNode.find((p) => p.node.nodeId === n.nodeId)?.status?.storedBytes ?? 0) })),
        loads,
        shardInputs,
        names,
        now,
      ),
      tables,
      transactions: {
        ...this.transactionRates(),
        // Without an answer from the coordinator, nothing is claimed about decided transactions.
        inDoubt: buildInDoubtViews(decidedInputs, decided === null ? [] : prepared, names, now, this.options.inDoubtMinAgeMs),
        recent: this.options.recent.list(50),
      },
      conflicts: conflicts
        .map((c) => ({
          conflictId: c.conflictId,
          shardId: c.shardId,
          originNodeId: c.originNodeId,
          originName: names(c.originNodeId),
          status: conflictStatusNames[c.status] ?? "unknown",
          detectedAtMs: c.detectedAtMs,
          reasons: c.reasons,
        }))
        .sort((a, b) => b.detectedAtMs - a.detectedAtMs)
        .slice(0, 200),
      moves,
      charts: {
        throughput: this.throughput.toSeriesSet(["committed/s", "aborted/s"]),
        latency: this.latency.toSeriesSet(["p50 ms", "p99 ms"]),
        lag: this.lag.toSeriesSet(
          this.lag
            .labels()
            .sort((a, b) => (this.lag.maxOf(b) ?? 0) - (this.lag.maxOf(a) ?? 0) || a.localeCompare(b))
            .slice(0, lagLinesMax)
            .sort(),
        ),
      },
      errors,
    };
  }

  /** Scrape every target; a target that fails keeps its last samples, so rates do not jump. */
  private async scrapeAll(deadlineMs: number, errors: SourceError[]): Promise<Scrape> {
    await Promise.all(
      this.options.metricsTargets.map(async (target) => {
        try {
          this.lastSamples.set(target.name, parsePrometheusText(await fetchMetricsText(target.url, deadlineMs)));
        } catch (error) {
          errors.push({ source: `metrics ${target.name}`, message: (error as Error).message });
        }
      }),
    );
    const scrape: Scrape = { atMs: Date.now(), samples: [...this.lastSamples.values()].flat() };
    this.scrapes.push(scrape);
    while (this.scrapes.length > this.scrapesKept) this.scrapes.shift();
    return scrape;
  }

  /** The scrape closest to `windowMs` before the latest one (the oldest kept if none is that old). */
  private scrapeBefore(windowMs: number): { before: Scrape; after: Scrape } | null {
    const after = this.scrapes[this.scrapes.length - 1];
    if (!after || this.scrapes.length < 2) return null;
    const target = after.atMs - windowMs;
    let before = this.scrapes[0]!;
    for (const scrape of this.scrapes) {
      if (scrape === after) break;
      if (scrape.atMs <= target) before = scrape;
    }
    return { before, after };
  }

  private recordRates(now: number): void {
    const pair = this.scrapeBefore(rateWindowMs);
    const rate = (outcome: string) => (pair ? counterRate(pair.before, pair.after, "mycelium_transactions_total", { outcome }) : null);
    this.throughput.push(now, { "committed/s": rate("committed") ?? (pair ? 0 : null), "aborted/s": rate("aborted") ?? (pair ? 0 : null) });
    const quantile = (q: number) => {
      if (!pair) return null;
      const seconds = histogramQuantile(q, pair.before.samples, pair.after.samples, "mycelium_transaction_duration_seconds", { outcome: "committed" });
      return seconds === null ? null : seconds * 1000;
    };
    this.latency.push(now, { "p50 ms": quantile(0.5), "p99 ms": quantile(0.99) });
  }

  private transactionRates(): Pick<ConsoleSnapshot["transactions"], "committedPerSecond" | "abortedPerSecond" | "active" | "inDoubtGauge" | "phases"> {
    const pair = this.scrapeBefore(rateWindowMs);
    const latest = this.scrapes[this.scrapes.length - 1]?.samples ?? [];
    const phasePair = this.scrapeBefore(phaseWindowMs);
    const phaseNames = [...new Set(latest.filter((s) => s.name === "mycelium_transaction_phase_duration_seconds_count").map((s) => s.labels.phase ?? ""))].filter(Boolean).sort();
    const phases: PhaseLatency[] = phaseNames.map((phase) => {
      const ms = (q: number) => {
        const seconds = phasePair ? histogramQuantile(q, phasePair.before.samples, phasePair.after.samples, "mycelium_transaction_phase_duration_seconds", { phase }) : null;
        return seconds === null ? null : seconds * 1000;
      };
      return { phase, p50Ms: ms(0.5), p99Ms: ms(0.99), count: phasePair ? histogramCount(phasePair.before.samples, phasePair.after.samples, "mycelium_transaction_phase_duration_seconds", { phase }) : 0 };
    });
    return {
      // A counter no transaction has touched yet has no series: that is 0 per second, not unknown.
      committedPerSecond: pair ? (counterRate(pair.before, pair.after, "mycelium_transactions_total", { outcome: "committed" }) ?? 0) : null,
      abortedPerSecond: pair ? (counterRate(pair.before, pair.after, "mycelium_transactions_total", { outcome: "aborted" }) ?? 0) : null,
      active: sumOf(latest, "mycelium_transactions_active"),
      inDoubtGauge: sumOf(latest, "mycelium_transactions_in_doubt"),
      phases,
    };
  }

  private nodeStatementRate(nodeId: string): number | null {
    const target = this.options.metricsTargets.find((t) => t.nodeId === nodeId);
    const pair = this.scrapeBefore(rateWindowMs);
    if (!target || !pair) return null;
    // Node-agents label their series with instance = node id; no series yet means no statement yet.
    if (!pair.after.samples.some((s) => s.labels.instance === nodeId)) return null;
    return counterRate(pair.before, pair.after, "mycelium_node_statements_total", { instance: nodeId }) ?? 0;
  }

  /** Start the next round of checksum comparisons unless one is running or it is not yet time. */
  private maybeCompareChecksums(shards: readonly ShardInput[], nodes: readonly common.NodeInfo[]): void {
    const now = Date.now();
    if (this.checksumRound) return;
    for (const shardId of [...this.checksums.keys()]) if (!shards.some((s) => s.shardId === shardId)) this.checksums.delete(shardId);
    const withCopies = shards.filter((s) => s.replicaNodeIds.length > 1 && s.primaryNodeId);
    if (withCopies.length === 0) return;
    // Shards never compared go first, at once; the others in turn, every shard once per interval.
    const fresh = withCopies.filter((s) => !this.checksums.has(s.shardId));
    const due = now - this.lastChecksumRoundAtMs >= this.options.checksumIntervalMs / Math.ceil(withCopies.length / checksumShardsPerRound);
    if (fresh.length === 0 && !due) return;
    this.lastChecksumRoundAtMs = now;
    const addresses = new Map(nodes.filter((n) => n.status !== common.NodeStatus.NODE_STATUS_DOWN).map((n) => [n.nodeId, n.address]));
    let round: ShardInput[];
    if (fresh.length > 0) {
      round = fresh.slice(0, checksumShardsPerRound);
    } else {
      round = Array.from({ length: Math.min(checksumShardsPerRound, withCopies.length) }, (_, i) => withCopies[(this.checksumCursor + i) % withCopies.length]!);
      this.checksumCursor = (this.checksumCursor + round.length) % withCopies.length;
    }
    this.checksumRound = Promise.all(round.map((shard) => this.compareShard(shard, addresses)))
      .then(() => undefined)
      .finally(() => {
        this.checksumRound = null;
      });
  }

  private async compareShard(shard: ShardInput, addresses: ReadonlyMap<string, string>): Promise<void> {
    const { admin } = this.options;
    const results = new Map<string, ChecksumResult>();
    const primaryAddress = addresses.get(shard.primaryNodeId);
    for (const nodeId of shard.replicaNodeIds.filter((id) => id !== shard.primaryNodeId)) {
      const address = addresses.get(nodeId);
      let state: ChecksumResult["state"] = "unknown";
      if (address && primaryAddress) {
        try {
          const secondary = await admin.replicaState(address, shard.shardId, 0, 2000);
          const primary = secondary.appliedLsn > 0 ? await admin.replicaState(primaryAddress, shard.shardId, secondary.appliedLsn, 2000) : null;
          state = compareChecksum(secondary, primary);
        } catch {
          state = "unknown";
        }
      }
      results.set(nodeId, { state, checkedAtMs: Date.now() });
    }
    this.checksums.set(shard.shardId, results);
  }

  /** Wait for a checksum round in progress (on shutdown). */
  async settle(): Promise<void> {
    await this.checksumRound;
  }
}

function toNodeInput(n: common.NodeInfo): NodeInput {
  return {
    nodeId: n.nodeId,
    type: nodeTypeName(n.nodeType),
    status: nodeStatusName(n.status),
    address: n.address,
    lastHeartbeatAtMs: n.lastHeartbeatAtMs,
    shardCount: n.shardCount,
    storedBytes: n.storedBytes,
    weight: n.nodeType === common.NodeType.NODE_TYPE_VALIDATOR ? n.validatorWeight : n.minerCapacityGb,
  };
}

function toShardInput(s: common.ShardInfo): ShardInput {
  return {
    shardId: s.shardId,
    table: s.table,
    index: s.index,
    state: shardStateName(s.state),
    epoch: s.epoch,
    primaryNodeId: s.primaryNodeId,
    replicaNodeIds: s.replicaNodeIds,
    sizeBytes: s.sizeBytes,
    keyRange: describeKeyRange(s.keyRange),
  };
}

function toReplicationInput(r: replicator.ShardReplication): ReplicationInput {
  return {
    shardId: r.shardId,
    headLsn: r.headLsn,
    failovers: r.failovers,
    replicas: r.replicas.map((p) => ({ nodeId: p.nodeId, primary: p.primary, appliedLsn: p.appliedLsn, lagEntries: p.lagEntries, lagMs: p.lagMs, state: p.state })),
  };
}

function toPolicyInput(p: common.TablePolicy): PolicyInput {
  const fn = p.shardFunction === common.ShardFunction.SHARD_FUNCTION_RANGE ? "range" : p.shardFunction === common.ShardFunction.SHARD_FUNCTION_CUSTOM ? `custom ${p.customFunction}` : "hash";
  return {
    table: p.table,
    shardKeys: p.shardKeys,
    shardFunction: fn,
    replicationFactor: p.replicationFactor ?? null,
    minValidatorCopies: p.minValidatorCopies ?? null,
    validatorOnly: p.validatorOnly,
    syncReplicas: p.syncReplicas,
    colocationGroup: p.colocationGroup,
    version: p.version,
  };
}
