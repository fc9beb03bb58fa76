import { databaseTag, openShardStore, postgresSchemaName, testing, type ShardStore } from "@mycelium/db";
import { Client } from "pg";
import { describeReplicationBehaviour } from "./support/replication-behaviour";
import { describeShardStoreBehaviour, expectDbError } from "./support/shard-store-behaviour";

let server: testing.PostgresServer;
let databaseCounter = 0;

beforeAll(async () => {
  server = await testing.startPostgresServer();
}, 120_000);

afterAll(async () => {
  await server?.stop();
});

async function freshUrl(): Promise<string> {
  return server.createDatabase(`node_${++databaseCounter}`);
}

describe("PostgreSQL shard store", () => {
  describeShardStoreBehaviour(() => ({
    kind: "postgres",
    blobType: "BYTEA",
    freshOptions: async (overrides = {}) => ({
      kind: "postgres",
      url: await freshUrl(),
      sslMode: "disable",
      maxConnections: 8,
      ...overrides,
    }),
  }));

  describeReplicationBehaviour(() => ({
    kind: "postgres",
    blobType: "BYTEA",
    freshOptions: async (overrides = {}) => ({ kind: "postgres", url: await freshUrl(), sslMode: "disable", maxConnections: 8, ...overrides }),
    // A session outside the store: with myc.replaying on, the capture trigger records nothing.
    tamper: async (options, shardId, sql) => {
      const client = new Client({ connectionString: (options as { url: string }).url });
      await client.connect();
      try {
        await client.query(`SET search_path TO "${postgresSchemaName(shardId)}"; SET myc.replaying = 'on'`);
        await client.query(sql);
      } finally {
        await client.end();
      }
    },
  }));

  describe("PostgreSQL specifics", () => {
    const stores: ShardStore[] = [];
    afterEach(async () => {
      for (const store of stores.splice(0)) await store.close();
    });

    test("one schema per shard, and PREPARE TRANSACTION 'myc_<txid>_<shard>~<database tag>' for prepare", async () => {
      const url = await freshUrl();
      const store = await openShardStore({ kind: "postgres", url, sslMode: "disable" });
      stores.push(store);
      await store.ensureShard("orders_3");
      await store.ensureShard("Orders-4");
      await store.applySchema("orders_3", ["CREATE TABLE t (id INT PRIMARY KEY)"]);
      const tx = await store.begin("orders_3", "7f2c-1");
      await tx.execute("INSERT INTO t (id) VALUES (?)", [1]);
      await tx.prepare();
      const client = new Client({ connectionString: url });
      await client.connect();
      try {
        const schemas = await client.query("SELECT nspname FROM pg_namespace WHERE nspname LIKE 'myc%' ORDER BY 1");
        // Orders-4 is not a plain lower-case id, so a hash of the exact id keeps its schema unique.
        expect(schemas.rows.map((row) => row.nspname)).toEqual([
          "myc_orders_3",
          expect.stringMatching(/^myc_orders_4_[0-9a-f]{10}$/),
          "mycelium_node",
        ]);
        const prepared = await client.query("SELECT gid, database FROM pg_prepared_xacts WHERE database = current_database()");
        // Tagged with the database: nodes sharing one server must not collide on these server-wide ids.
        const database = new URL(url).pathname.slice(1);
        expect(prepared.rows).toEqual([{ gid: `myc_7f2c-1_orders_3~${databaseTag(database)}`, database }]);
      } finally {
        await client.end();
      }
      await tx.commit();
      expect((await store.read("orders_3", "SELECT id FROM t", [])).rows).toEqual([[1]]);
    });

    test("sslMode prefer falls back to a plain connection when the server has no TLS; require does not", async () => {
      const url = await freshUrl();
      const store = await openShardStore({ kind: "postgres", url, sslMode: "prefer" });
      stores.push(store);
      await store.checkReady();
      await expectDbError(openShardStore({ kind: "postgres", url, sslMode: "require" }), "CONFIG");
      await expectDbError(openShardStore({ kind: "postgres", url: `${url}?sslmode=require`, sslMode: "disable" }), "CONFIG");
    });

    test("pool statistics are reported", async () => {
      const store = await openShardStore({ kind: "postgres", url: await freshUrl(), sslMode: "disable", maxConnections: 3 });
      stores.push(store);
      await store.ensureShard("s1");
      const tx = await store.begin("s1", "held");
      const stats = store.stats();
      expect(stats.pool).toMatchObject({ total: expect.any(Number), idle: expect.any(Number), waiting: 0 });
      expect(stats.pool!.total).toBeLessThanOrEqual(3);
      expect(stats.openTransactions).toBe(1);
      await tx.rollback();
    });

    test("an unreachable server is UNAVAILABLE", async () => {
      await expectDbError(
        openShardStore({ kind: "postgres", url: "postgres://postgres@127.0.0.1:1/none", sslMode: "disable", connectTimeoutMs: 2000 }),
        "UNAVAILABLE",
      );
    });
  });
});
