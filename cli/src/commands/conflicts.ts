import type { Command } from "commander";
import { conflictStatusNames } from "@mycelium/console";
import { decodeChangeEntry } from "@mycelium/db";
import { replicator } from "@mycelium/proto";
import { renderTable, toJson } from "../output/format";
import { adminOf, withConnectionFlags } from "./connect";
import { withAdmin } from "./policy";

const statusNames = conflictStatusNames;

export function registerConflicts(program: Command): void {
  const conflicts = program.command("conflicts").description("the conflict journal: a returning primary's transactions that clashed with the new primary's (admin)");

  withConnectionFlags(conflicts.command("list").description("journaled conflicts").option("--all", "resolved ones too").option("--json", "print JSON")).action(async (options: { all?: boolean; json?: boolean }) => {
    await withAdmin(options, async (client) => {
      const found = await adminOf(client).conflicts(options.all ? replicator.ConflictStatus.CONFLICT_STATUS_UNSPECIFIED : replicator.ConflictStatus.CONFLICT_STATUS_PENDING);
      if (options.json) {
        process.stdout.write(toJson(found.map((c) => replicator.Conflict.toJSON(c))) + "\n");
        return;
      }
      const rows = found.map((c) => [c.conflictId, c.shardId, c.originNodeId, statusNames[c.status] ?? "?", new Date(c.detectedAtMs).toISOString(), c.reasons.join("; ")]);
      process.stdout.write(renderTable(["conflict_id", "shard", "from_node", "status", "detected_at", "why"], rows) + "\n");
    });
  });

  withConnectionFlags(conflicts.command("show <conflictId>").description("one conflict with its row changes").option("--json", "print JSON")).action(async (conflictId: string, options: { json?: boolean }) => {
    await withAdmin(options, async (client) => {
      const c = await adminOf(client).conflict(conflictId);
      if (options.json) {
        process.stdout.write(toJson(replicator.Conflict.toJSON(c)) + "\n");
        return;
      }
      const entry = decodeChangeEntry(c.entry);
      process.stdout.write(`${c.conflictId}: ${statusNames[c.status]} — shard ${c.shardId}, from node ${c.originNodeId}, transaction ${entry.txId ?? "(autocommit)"} at lsn ${entry.lsn}\n`);
      for (const reason of c.reasons) process.stdout.write(`  why: ${reason}\n`);
      for (const change of entry.changes) {
        process.stdout.write(`  ${change.op} ${change.table} ${toJson(change.key)}${change.row ? ` → ${toJson(change.row)}` : ""}${change.before ? ` (was ${toJson(change.before)})` : ""}\n`);
      }
    });
  });

  withConnectionFlags(conflicts.command("resolve <conflictId> <resolution>").description("apply (write its rows on the current primary after all) or discard a journaled transaction")).action(
    async (conflictId: string, resolution: string, options: object) => {
      await withAdmin(options, async (client) => {
        const wanted = resolution === "apply" ? replicator.ConflictStatus.CONFLICT_STATUS_APPLIED : resolution === "discard" ? replicator.ConflictStatus.CONFLICT_STATUS_DISCARDED : null;
        if (wanted === null) throw new Error(`resolution must be apply or discard, not ${resolution}`);
        const conflict = await adminOf(client).resolveConflict(conflictId, wanted);
        process.stdout.write(`${conflictId}: ${statusNames[conflict.status]}\n`);
      });
    },
  );
}
