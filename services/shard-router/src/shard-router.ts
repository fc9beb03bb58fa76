import { common, router, type SqlValue } from "@mycelium/proto";
import { MyceliumError } from "@mycelium/rpc";
import { analyze, SqlError, type Analysis, type AnalysisCache } from "@mycelium/sql";
import { nodeIdFromPublicKey, verifyRegistration, type Identity } from "@mycelium/tls";
import type { Logger, Telemetry } from "@mycelium/telemetry";
import type { RouterStore } from "./adapters/router-store";
import { ClusterSnapshot } from "./core/cluster-snapshot";
import { memberStatus } from "./core/membership";
import { placementProblem, placementWeight, placeShard, type PlacementNode } from "./core/placement";
import { normalizePolicy, type PolicyDefaults } from "./core/policy";
import { planStatement } from "./core/route-planner";
import { initialKeyRanges, type TableSchema } from "./core/table-layout";

export interface ShardRouterOptions {
  store: RouterStore;
  telemetry: Telemetry;
  networkId: string;
  policyDefaults: PolicyDefaults;
  heartbeatIntervalMs: number;
  heartbeatTimeoutMs: number;
  analysisCache: AnalysisCache;
  /** How stale a cached snapshot may be before the store's revision is checked again. @default 200 */
  snapshotMaxAgeMs?: number;
  /** Registrations signed more than this far from now are refused (replay bound). @default 300000 */
  registrationClockSkewMs?: number;
  now?: () => number;
}

/**
 * The shard-router's behaviour, independent of gRPC: membership, policies, the shard map, routing.
 * State lives in the control store; this keeps a snapshot that is reloaded when the store changes.
 */
export class ShardRouter {
  private snapshotValue: ClusterSnapshot | null = null;
  private snapshotCheckedAtMs = 0;
  private loading: Promise<ClusterSnapshot> | null = null;
  private readonly log: Logger;
  private readonly now: () => number;
  private readonly metrics;

  constructor(private readonly options: ShardRouterOptions) {
    this.log = options.telemetry.logger.child({ component: "shard-router" });
    this.now = options.now ?? Date.now;
    const m = options.telemetry.metrics;
    this.metrics = {
      routes: m.counter({ name: "mycelium_router_routes_total", help: "Statements routed, by kind and fan-out.", labelNames: ["kind", "fanout"] as const }),
      rejected: m.counter({ name: "mycelium_router_rejected_total", help: "Statements refused, by reason.", labelNames: ["reason"] as const }),
      nodes: m.gauge({
        name: "mycelium_nodes",
        help: "Registered nodes by type and status.",
        labelNames: ["type", "status"] as const,
        // Status comes from heartbeat leases, so it is read when scraped rather than kept up to date.
        collect: async () => {
          const snapshot = this.snapshotValue;
          if (!snapshot) return;
          const nodes = await this.liveNodes(snapshot).catch(() => []);
          this.metrics.nodes.reset();
          for (const node of nodes) {
            this.metrics.nodes.inc({ type: common.nodeTypeToJSON(node.nodeType), status: common.nodeStatusToJSON(node.status) });
          }
        },
      }),
      shards: m.gauge({ name: "mycelium_shards", help: "Shards by table.", labelNames: ["table"] as const }),
      replicasPerNode: m.gauge({ name: "mycelium_node_shard_replicas", help: "Shard replicas placed on each node.", labelNames: ["node"] as const }),
    };
  }

  // ---- membership ---------------------------------------------------------------------------------

  async registerNode(request: router.RegisterNodeRequest, caller: Identity): Promise<common.NodeInfo> {
    const nodeType = request.nodeType === common.NodeType.NODE_TYPE_VALIDATOR ? "validator" : request.nodeType === common.NodeType.NODE_TYPE_MINER ? "miner" : null;
    if (!nodeType) throw new MyceliumError("INVALID_ARGUMENT", "node_type must be VALIDATOR or MINER");
    let derived: string;
    try {
      derived = nodeIdFromPublicKey(request.publicKey);
    } catch (error) {
      throw new MyceliumError("INVALID_ARGUMENT", `public_key is not a hex Ed25519 public key: ${(error as Error).message}`);
    }
    if (derived !== request.nodeId) {
      throw new MyceliumError("PERMISSION_DENIED", `node id ${request.nodeId} does not belong to the public key presented (its id is ${derived})`, { reason: "NODE_ID_MISMATCH" });
    }
    if (caller.name !== request.nodeId) {
      throw new MyceliumError("PERMISSION_DENIED", `certificate ${caller.uri} may not register node ${request.nodeId}; a node registers itself with a certificate named after its node id`, { reason: "NODE_ID_MISMATCH" });
    }
    const skew = Math.abs(this.now() - request.timestampMs);
    if (skew > (this.options.registrationClockSkewMs ?? 300_000)) {
      throw new MyceliumError("FAILED_PRECONDITION", `registration is timestamped ${Math.round(skew / 1000)} s away from the router's clock; check the node's clock`, { reason: "CLOCK_SKEW" });
    }
    if (nodeType === "miner" && !(request.minerCapacityGb > 0)) {
      throw new MyceliumError("INVALID_ARGUMENT", "a miner must announce its MINER_CAPACITY (GB) > 0");
    }
    if (nodeType === "validator" && !(request.validatorWeight > 0)) {
      throw new MyceliumError("INVALID_ARGUMENT", "a validator must announce a VALIDATOR_WEIGHT > 0");
    }
    const valid = verifyRegistration(
      {
        nodeId: request.nodeId,
        nodeType,
        address: request.address,
        publicKey: request.publicKey,
        validatorWeight: request.validatorWeight,
        minerCapacityGb: request.minerCapacityGb,
        networkId: this.options.networkId,
        timestampMs: request.timestampMs,
      },
      request.signature,
    );
    if (!valid) throw new MyceliumError("PERMISSION_DENIED", `registration of ${request.nodeId} is not signed by its key`, { reason: "BAD_SIGNATURE" });

    const snapshot = await this.snapshot();
    const previous = snapshot.node(request.nodeId);
    const nowMs = this.now();
    const node = common.NodeInfo.create({
      nodeId: request.nodeId,
      nodeType: request.nodeType,
      address: request.address,
      publicKey: request.publicKey,
      validatorWeight: request.validatorWeight,
      minerCapacityGb: request.minerCapacityGb,
      status: common.NodeStatus.NODE_STATUS_UP,
      registeredAtMs: previous?.registeredAtMs || nowMs,
      lastHeartbeatAtMs: nowMs,
      storedBytes: previous?.storedBytes ?? 0,
      protocolVersion: request.protocolVersion,
    });
    await this.options.store.putNode(node);
    await this.options.store.recordHeartbeat(node.nodeId, this.options.heartbeatTimeoutMs);
    this.invalidate();
    this.log.info({ nodeId: node.nodeId, nodeType, address: node.address, rejoined: Boolean(previous) }, "node registered");
    return this.withStatus(node, nowMs);
  }

  async heartbeat(request: router.HeartbeatRequest, caller: Identity): Promise<router.HeartbeatResponse> {
    if (caller.name !== request.nodeId) {
      throw new MyceliumError("PERMISSION_DENIED", `certificate ${caller.uri} may not send heartbeats for node ${request.nodeId}`);
    }
    const snapshot = await this.snapshot();
    const node = snapshot.node(request.nodeId);
    if (!node) {
      throw new MyceliumError("NOT_FOUND", `node ${request.nodeId} is not registered; register first`, { reason: "NOT_REGISTERED" });
    }
    await this.options.store.recordHeartbeat(request.nodeId, this.options.heartbeatTimeoutMs);
    // Stored sizes change constantly; rewrite the node record (which every router reloads) only on a real change.
    const drift = Math.abs(request.storedBytes - node.storedBytes);
    if (drift > Math.max(1 << 20, node.storedBytes * 0.05)) {
      await this.options.store.putNode({ ...node, storedBytes: request.storedBytes });
      this.invalidate();
    }
    return router.HeartbeatResponse.create({ assignedShards: snapshot.shardsOfNode(request.nodeId), shardMapVersion: snapshot.revision });
  }

  async listNodes(): Promise<common.NodeInfo[]> {
    const snapshot = await this.snapshot();
    const nodes = await this.liveNodes(snapshot);
    return nodes.map((node) => ({ ...node, shardCount: snapshot.shardsOfNode(node.nodeId).length }));
  }

  /** Every registered node with its status from the heartbeat leases. */
  private async liveNodes(snapshot: ClusterSnapshot): Promise<common.NodeInfo[]> {
    const heartbeats = await this.options.store.lastHeartbeats(this.options.heartbeatTimeoutMs);
    const nowMs = this.now();
    return snapshot.nodes.map((node) => this.withStatus({ ...node, lastHeartbeatAtMs: heartbeats.get(node.nodeId) ?? node.lastHeartbeatAtMs }, nowMs));
  }

  // ---- policies and shards ------------------------------------------------------------------------

  async setPolicy(input: common.TablePolicy, expectedVersion: number): Promise<router.SetPolicyResponse> {
    const snapshot = await this.snapshot();
    const existing = snapshot.layout(input.table.trim().toLowerCase());
    const policy = normalizePolicy(input, this.options.policyDefaults, existing?.policy ?? null, existing?.schema ?? null);
    if (expectedVersion && existing && existing.policy.version !== expectedVersion) {
      throw new MyceliumError("ABORTED", `policy of ${policy.table} is at version ${existing.policy.version}, not ${expectedVersion}; read it again`, { reason: "VERSION_CONFLICT" });
    }
    const nodes = this.placementNodes(await this.liveNodes(snapshot));
    const problem = placementProblem(placementPolicy(policy), nodes);
    if (problem) throw new MyceliumError("FAILED_PRECONDITION", `cannot place ${policy.table}: ${problem}`, { reason: "PLACEMENT" });

    if (!existing) {
      // A table joining a colocation group takes the group's layout: shard i of every table of the
      // group covers the same keys on the same nodes, so joins on the shard key stay on one node.
      const partner = snapshot.tables.find((layout) => layout.policy.colocationGroup === policy.colocationGroup && layout.table !== policy.table);
      if (partner) checkColocation(policy, partner.policy, partner.shards.length);
      const partnerShards = partner ? [...partner.shards].sort((a, b) => a.index - b.index) : null;
      const shards = initialKeyRanges(policy, policy.initialShardCount ?? 1).map((keyRange, index) => {
        const shardId = `${policy.table}-${String(index).padStart(4, "0")}`;
        const model = partnerShards?.[index];
        const replicas = model ? [...model.replicaNodeIds] : placeShard(shardId, placementPolicy(policy), nodes);
        if (model) keyRange = model.keyRange ?? keyRange;
        return common.ShardInfo.create({
          shardId,
          table: policy.table,
          index,
          keyRange,
          epoch: 1,
          primaryNodeId: replicas[0] ?? "",
          replicaNodeIds: replicas,
          state: common.ShardState.SHARD_STATE_ACTIVE,
        });
      });
      const stored = await this.options.store.createTable(policy, shards);
      this.invalidate();
      this.log.info({ table: policy.table, shards: shards.length }, "table policy created");
      return router.SetPolicyResponse.create({ policy: stored, shards });
    }
    // Changing how a table's existing shards are placed moves data: that is the rebalancer's work.
    const placementChanged =
      existing.policy.replicationFactor !== policy.replicationFactor ||
      existing.policy.validatorOnly !== policy.validatorOnly ||
      existing.policy.minValidatorCopies !== policy.minValidatorCopies;
    if (placementChanged) {
      throw new MyceliumError(
        "FAILED_PRECONDITION",
        `changing replication_factor, validator_only or min_validator_copies of ${policy.table} needs its shards moved, which online rebalancing does; it is not available yet`,
        { reason: "NEEDS_REBALANCE" },
      );
    }
    const stored = await this.options.store.updatePolicy(policy, existing.policy.version);
    this.invalidate();
    return router.SetPolicyResponse.create({ policy: stored, shards: [...existing.shards] });
  }

  async getPolicy(table: string): Promise<common.TablePolicy> {
    const layout = (await this.snapshot()).layout(table.trim().toLowerCase());
    if (!layout) throw new MyceliumError("NOT_FOUND", `table ${table} has no policy`, { reason: "NO_POLICY" });
    return layout.policy;
  }

  async listPolicies(): Promise<common.TablePolicy[]> {
    return (await this.snapshot()).tables.map((layout) => layout.policy);
  }

  async deletePolicy(table: string): Promise<void> {
    const layout = (await this.snapshot()).layout(table.trim().toLowerCase());
    if (!layout) throw new MyceliumError("NOT_FOUND", `table ${table} has no policy`, { reason: "NO_POLICY" });
    if (layout.schema) {
      throw new MyceliumError("FAILED_PRECONDITION", `table ${layout.table} still exists; DROP TABLE ${layout.table} first`, { reason: "TABLE_EXISTS" });
    }
    await this.options.store.deleteTable(layout.table);
    this.invalidate();
  }

  async listShards(table: string): Promise<router.ListShardsResponse> {
    const snapshot = await this.snapshot();
    const shards = table
      ? (snapshot.layout(table.trim().toLowerCase())?.shards ?? [])
      : snapshot.tables.flatMap((layout) => [...layout.shards]);
    if (table && !snapshot.layout(table.trim().toLowerCase())) throw new MyceliumError("NOT_FOUND", `table ${table} has no policy`);
    return router.ListShardsResponse.create({ shards: [...shards], shardMapVersion: snapshot.revision });
  }

  // ---- routing ------------------------------------------------------------------------------------

  async route(sql: string, params: SqlValue[]): Promise<router.RoutePlan> {
    const analysis = this.analyze(sql, params);
    const snapshot = await this.snapshot();
    try {
      const plan = planStatement({ sql, params, analysis }, snapshot);
      this.metrics.routes.inc({ kind: analysis.kind, fanout: plan.targets.length > 1 ? "scatter" : "single" });
      return plan;
    } catch (error) {
      this.metrics.rejected.inc({ reason: (error as MyceliumError).reason ?? "other" });
      throw error;
    }
  }

  /** The seed's get_shard(table, sql). */
  async getShard(table: string, sql: string, params: SqlValue[]): Promise<common.ShardInfo[]> {
    const plan = await this.route(sql, params);
    const wanted = table.trim().toLowerCase();
    if (wanted && !plan.tables.includes(wanted)) {
      throw new MyceliumError("INVALID_ARGUMENT", `the statement does not use table ${wanted} (it uses ${plan.tables.join(", ") || "no table"})`);
    }
    const snapshot = await this.snapshot();
    const ids = new Set(plan.targets.map((t) => t.shard?.shardId));
    return plan.tables.flatMap((t) => snapshot.layout(t)?.shards ?? []).filter((shard) => ids.has(shard.shardId));
  }

  async recordSchema(table: string, ddl: string[]): Promise<number> {
    const snapshot = await this.snapshot();
    const layout = snapshot.layout(table);
    if (!layout) throw new MyceliumError("NOT_FOUND", `table ${table} has no policy`);
    let schema: TableSchema | null = layout.schema;
    for (const statement of ddl) {
      const analysis = this.analyze(statement, []);
      const info = analysis.ddl;
      if (!info || info.table !== table) throw new MyceliumError("INVALID_ARGUMENT", `"${statement}" is not DDL on table ${table}`);
      if (info.action === "create_table") {
        if (schema && info.ifNotExists) continue;
        schema = { table, columns: info.columns ?? [], primaryKey: info.primaryKey ?? [], ddl: [statement], version: schema?.version ?? 0 };
      } else if (info.action === "drop_table") {
        schema = null;
      } else if (schema) {
        schema = {
          ...schema,
          columns: [...schema.columns, ...(info.addedColumns ?? [])],
          ddl: [...schema.ddl, statement],
        };
      }
    }
    if (!schema) {
      await this.options.store.deleteSchema(table);
      this.invalidate();
      return 0;
    }
    const expected = layout.schema?.version ?? 0;
    const next = { ...schema, version: expected + 1 };
    await this.options.store.putSchema(next, expected);
    this.invalidate();
    return next.version;
  }

  async getTableSchema(table: string): Promise<TableSchema | null> {
    return (await this.snapshot()).layout(table)?.schema ?? null;
  }

  // ---- snapshot -----------------------------------------------------------------------------------

  /** The cluster as last loaded, reloaded when the store has changed since (checked at most every snapshotMaxAgeMs). */
  async snapshot(): Promise<ClusterSnapshot> {
    const nowMs = this.now();
    if (this.snapshotValue && nowMs - this.snapshotCheckedAtMs < (this.options.snapshotMaxAgeMs ?? 200)) return this.snapshotValue;
    this.loading ??= this.reload().finally(() => {
      this.loading = null;
    });
    return this.loading;
  }

  invalidate(): void {
    this.snapshotCheckedAtMs = 0;
  }

  private async reload(): Promise<ClusterSnapshot> {
    const revision = await this.options.store.revision();
    this.snapshotCheckedAtMs = this.now();
    if (this.snapshotValue && this.snapshotValue.revision === revision) return this.snapshotValue;
    const metadata = await this.options.store.load();
    this.snapshotValue = new ClusterSnapshot(revision, metadata);
    this.updateGauges(this.snapshotValue);
    return this.snapshotValue;
  }

  private updateGauges(snapshot: ClusterSnapshot): void {
    this.metrics.replicasPerNode.reset();
    for (const node of snapshot.nodes) {
      this.metrics.replicasPerNode.set({ node: node.nodeId }, snapshot.shardsOfNode(node.nodeId).length);
    }
    this.metrics.shards.reset();
    for (const layout of snapshot.tables) this.metrics.shards.set({ table: layout.table }, layout.shards.length);
  }

  private analyze(sql: string, params: SqlValue[]): Analysis {
    try {
      const analysis = this.options.analysisCache.analyze(sql, { dialect: "sqlite", params });
      return analysis;
    } catch (error) {
      if (error instanceof SqlError) {
        this.metrics.rejected.inc({ reason: error.code });
        throw new MyceliumError("INVALID_ARGUMENT", error.message, { reason: error.code });
      }
      throw error;
    }
  }

  private withStatus(node: common.NodeInfo, nowMs: number): common.NodeInfo {
    if (node.status === common.NodeStatus.NODE_STATUS_DRAINED) return node;
    const status = memberStatus(node.lastHeartbeatAtMs, nowMs, this.options.heartbeatIntervalMs, this.options.heartbeatTimeoutMs);
    const statusEnum = status === "up" ? common.NodeStatus.NODE_STATUS_UP : status === "suspect" ? common.NodeStatus.NODE_STATUS_SUSPECT : common.NodeStatus.NODE_STATUS_DOWN;
    return { ...node, status: statusEnum };
  }

  /** Nodes a new shard may be placed on: registered and not down. */
  private placementNodes(nodes: common.NodeInfo[]): PlacementNode[] {
    const live = nodes.filter((node) => node.status === common.NodeStatus.NODE_STATUS_UP || node.status === common.NodeStatus.NODE_STATUS_SUSPECT);
    const miners = live.filter((node) => node.nodeType === common.NodeType.NODE_TYPE_MINER);
    const meanMinerCapacity = miners.length ? miners.reduce((sum, node) => sum + node.minerCapacityGb, 0) / miners.length : 0;
    return live.map((node) => {
      const kind = node.nodeType === common.NodeType.NODE_TYPE_VALIDATOR ? "validator" : "miner";
      return {
        nodeId: node.nodeId,
        kind,
        weight: placementWeight({ kind, validatorWeight: node.validatorWeight, minerCapacityGb: node.minerCapacityGb }, meanMinerCapacity),
      };
    });
  }
}

/** A table may join a colocation group only with the group's shard function, key arity and shard count. */
function checkColocation(policy: common.TablePolicy, partner: common.TablePolicy, partnerShardCount: number): void {
  const problems: string[] = [];
  if (policy.shardFunction !== partner.shardFunction) problems.push("another shard function");
  if (policy.shardKeys.length !== partner.shardKeys.length) problems.push(`${policy.shardKeys.length} shard key column(s) instead of ${partner.shardKeys.length}`);
  if ((policy.initialShardCount ?? partnerShardCount) !== partnerShardCount) problems.push(`${policy.initialShardCount} shards instead of ${partnerShardCount}`);
  if (policy.customFunction !== partner.customFunction) problems.push("another custom shard function");
  if (problems.length > 0) {
    throw new MyceliumError(
      "FAILED_PRECONDITION",
      `${policy.table} cannot join colocation group ${policy.colocationGroup}: it has ${problems.join(", ")} than ${partner.table}; co-located tables must be sharded alike`,
      { reason: "COLOCATION_MISMATCH" },
    );
  }
}

function placementPolicy(policy: common.TablePolicy) {
  return {
    replicationFactor: policy.replicationFactor ?? 0.5,
    validatorOnly: policy.validatorOnly,
    minValidatorCopies: policy.minValidatorCopies ?? 0,
  };
}

