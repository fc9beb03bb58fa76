import type { Command } from "commander";
import { common, replicator, router } from "@mycelium/proto";
import { describeKeyRange } from "@mycelium/console";
import { renderTable, toJson } from "../output/format";
import { adminOf, withConnectionFlags } from "./connect";
import { shardJson, withAdmin } from "./policy";

export function registerClusterViews(program: Command): void {
  withConnectionFlags(program.command("nodes").description("registered nodes and their status").option("--json", "print JSON")).action(async (options: { json?: boolean }) => {
    await withAdmin(options, async (client) => {
      const nodes = await adminOf(client).nodes();
      if (options.json) {
        process.stdout.write(toJson(nodes.map((n) => ({ nodeId: n.nodeId, type: common.nodeTypeToJSON(n.nodeType), status: common.nodeStatusToJSON(n.status), address: n.address, shards: n.shardCount, weight: n.validatorWeight, capacityGb: n.minerCapacityGb }))) + "\n");
        return;
      }
      const rows = nodes.map((n) => [n.nodeId, n.nodeType === common.NodeType.NODE_TYPE_VALIDATOR ? "validator" : "miner", common.nodeStatusToJSON(n.status).replace("NODE_STATUS_", "").toLowerCase(), n.address, n.shardCount, n.nodeType === common.NodeType.NODE_TYPE_VALIDATOR ? n.validatorWeight : n.minerCapacityGb, Math.round((Date.now() - n.lastHeartbeatAtMs) / 1000)]);
      process.stdout.write(renderTable(["node_id", "type", "status", "address", "replicas", "weight/capacity_gb", "last_heartbeat_s"], rows) + "\n");
    });
  });

  withConnectionFlags(program.command("shards [table]").description("shards with their primary, replicas and epoch").option("--json", "print JSON")).action(
    async (table: string | undefined, options: { json?: boolean }) => {
      await withAdmin(options, async (client) => {
        const admin = adminOf(client);
        const shards = await admin.shards(table ?? "");
        // Replication positions, when the replicator answers (a shard it does not own shows no lag).
        const replication = new Map<string, replicator.ShardReplication>();
        try {
          for (const shard of await admin.replication()) replication.set(shard.shardId, shard);
        } catch {
          // The shard map alone is still worth showing.
        }
        const lagOf = (s: common.ShardInfo) =>
          (replication.get(s.shardId)?.replicas ?? [])
            .filter((r) => !r.primary)
            .map((r) => `${r.nodeId.slice(0, 8)}:${r.lagEntries < 0 ? "?" : `${r.lagEntries}/${r.lagMs}ms`}`)
            .join(" ");
        if (options.json) {
          process.stdout.write(toJson(shards.map((s) => ({ ...shardJson(s), replication: replication.get(s.shardId) ? replicator.ShardReplication.toJSON(replication.get(s.shardId)!) : undefined }))) + "\n");
          return;
        }
        const rows = shards.map((s) => [s.shardId, s.epoch, common.shardStateToJSON(s.state).replace("SHARD_STATE_", "").toLowerCase(), s.primaryNodeId, s.replicaNodeIds.filter((r) => r !== s.primaryNodeId).join(","), replication.get(s.shardId)?.headLsn ?? "", lagOf(s), describeKeyRange(s.keyRange)]);
        process.stdout.write(renderTable(["shard", "epoch", "state", "primary", "secondaries", "head_lsn", "lag (entries/ms)", "key_range"], rows) + "\n");
      });
    },
  );

  withConnectionFlags(program.command("explain").description("how a statement would be routed").requiredOption("-e, --execute <sql>", "the statement").option("--json", "print JSON")).action(
    async (options: { execute: string; json?: boolean }) => {
      await withAdmin(options, async (client) => {
        const plan = await client.explain(options.execute);
        if (options.json) {
          process.stdout.write(toJson(router.RoutePlan.toJSON(plan)) + "\n");
          return;
        }
        process.stdout.write(`${router.statementKindToJSON(plan.kind).replace("STATEMENT_KIND_", "")} on ${plan.tables.join(", ")}${plan.isWrite ? " (write)" : ""}\n`);
        for (const note of plan.notes) process.stdout.write(`  ${note}\n`);
        const rows = plan.targets.map((t) => [t.shard?.shardId ?? "", t.shard?.epoch ?? 0, t.primaryNodeId, t.primaryAddress, t.statement?.sql ?? ""]);
        process.stdout.write(renderTable(["shard", "epoch", "primary", "address", "statement"], rows) + "\n");
        if (plan.merge) process.stdout.write(`merge: ${JSON.stringify(router.MergePlan.toJSON(plan.merge))}\n`);
      });
    },
  );
}
