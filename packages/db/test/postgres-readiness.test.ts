import { openShardStore, testing } from "@mycelium/db";
import { expectDbError } from "./support/shard-store-behaviour";

// A second server, configured wrongly on purpose: it cannot take part in two-phase commit.
let server: testing.PostgresServer;

beforeAll(async () => {
  server = await testing.startPostgresServer({ maxPreparedTransactions: 0 });
}, 120_000);

afterAll(async () => {
  await server?.stop();
});

test("checkReady refuses a server with max_prepared_transactions = 0 and says what to set", async () => {
  const store = await openShardStore({ kind: "postgres", url: await server.createDatabase("node"), sslMode: "disable" });
  try {
    const error = await expectDbError(store.checkReady(), "CONFIG");
    expect(error.message).toContain("max_prepared_transactions = 0");
    expect(error.message).toContain("set max_prepared_transactions to at least MYCELIUM_MAX_TRANSACTIONS in postgresql.conf");
  } finally {
    await store.close();
  }
});
