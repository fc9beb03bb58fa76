import type { Command } from "commander";
import { coordinator, fromValue } from "@mycelium/proto";
import { renderTable, toJson } from "../output/format";
import { adminOf, withConnectionFlags } from "./connect";
import { withAdmin } from "./policy";

export function registerTxn(program: Command): void {
  const txn = program.command("txn").description("in-doubt distributed transactions (admin)");

  withConnectionFlags(txn.command("list").description("transactions not yet resolved everywhere").option("--json", "print JSON")).action(async (options: { json?: boolean }) => {
    await withAdmin(options, async (client) => {
      const transactions = await adminOf(client).inDoubt();
      if (options.json) {
        process.stdout.write(toJson(transactions.map((t) => coordinator.TransactionInfo.toJSON(t))) + "\n");
        return;
      }
      const rows = transactions.map((t) => [t.txId, decisionName(t.decision), t.coordinatorId, new Date(t.decidedAtMs || t.startedAtMs).toISOString(), t.participants.map((p) => `${p.shardId}@${p.nodeId}${p.done ? "✓" : ""}`).join(" ")]);
      process.stdout.write(renderTable(["tx_id", "decision", "coordinator", "decided_at", "participants (✓ acknowledged)"], rows) + "\n");
    });
  });

  withConnectionFlags(txn.command("show <txId>").description("one transaction with its participants and prepared statements").option("--json", "print JSON")).action(async (txId: string, options: { json?: boolean }) => {
    await withAdmin(options, async (client) => {
      const t = await adminOf(client).transaction(txId);
      if (options.json) {
        process.stdout.write(toJson(coordinator.TransactionInfo.toJSON(t)) + "\n");
        return;
      }
      process.stdout.write(`${t.txId}: ${decisionName(t.decision)} (state ${coordinator.transactionStateToJSON(t.state).replace("TRANSACTION_STATE_", "").toLowerCase()}, coordinator ${t.coordinatorId})\n`);
      for (const p of t.participants) {
        process.stdout.write(`  ${p.shardId} on ${p.nodeId}: ${p.done ? "acknowledged" : "pending"}${p.error ? ` (${p.error})` : ""}\n`);
        for (const s of p.statements) process.stdout.write(`    ${s.sql}  ${JSON.stringify(s.params.map(fromValue), (_k, v: unknown) => (typeof v === "bigint" ? v.toString() : v))}\n`);
      }
    });
  });

  withConnectionFlags(
    txn
      .command("force <txId> <decision>")
      .description("decide a transaction that has no decision (commit or abort) and tell its participants")
      .option("--participant <shard=node>", "a participant, when the coordinator has no record (repeatable)", (v: string, p: string[]) => [...p, v], [] as string[]),
  ).action(async (txId: string, decision: string, options: { participant: string[] }) => {
    await withAdmin(options, async (client) => {
      const wanted = decision.toLowerCase();
      if (wanted !== "commit" && wanted !== "abort") throw new Error(`decision must be commit or abort, not ${decision}`);
      const transaction = await adminOf(client).forceResolve(txId, wanted, options.participant);
      process.stdout.write(`${txId}: ${decisionName(transaction.decision)}\n`);
    });
  });
}

function decisionName(decision: coordinator.Decision): string {
  return coordinator.decisionToJSON(decision).replace("DECISION_", "").toLowerCase();
}

