// Run by the crash tests in a separate process: prepares one transaction, prints PREPARED, then waits for the
// parent's SIGKILL — a participant that dies right after voting yes.
import { decodeStatements, openShardStore, type ShardStoreOptions } from "@mycelium/db";

async function main(): Promise<void> {
  let input = "";
  for await (const chunk of process.stdin) input += String(chunk);
  const { options, shardId, txId, statements } = JSON.parse(input) as {
    options: ShardStoreOptions;
    shardId: string;
    txId: string;
    statements: string;
  };
  const store = await openShardStore(options);
  const tx = await store.begin(shardId, txId);
  for (const statement of decodeStatements(statements)) await tx.execute(statement.sql, statement.params);
  await tx.prepare();
  process.stdout.write("PREPARED\n");
  setInterval(() => undefined, 60_000);
}

main().catch((error) => {
  process.stderr.write(`${(error as Error).stack ?? String(error)}\n`);
  process.exit(1);
});
