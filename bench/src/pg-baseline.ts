import { Client } from "pg";
import { measure, type Summary } from "./stats";

/**
 * The 2-shard transfer done by hand with node-postgres against two databases: BEGIN and UPDATE on each,
 * PREPARE TRANSACTION on both, COMMIT PREPARED on both — the work Mycelium's 2PC does, minus routing,
 * the decision log and the RPC hops.
 */
export async function plainPgTwoPhase(urls: [string, string], count: number, concurrency: number): Promise<Summary> {
  const clients = await Promise.all(
    Array.from({ length: concurrency }, async () => {
      const pair = [new Client({ connectionString: urls[0] }), new Client({ connectionString: urls[1] })] as const;
      await Promise.all(pair.map((c) => c.connect()));
      return pair;
    }),
  );
  const [setupA, setupB] = clients[0]!;
  for (const c of [setupA, setupB]) {
    await c.query("CREATE TABLE IF NOT EXISTS bench_baseline (id INTEGER PRIMARY KEY, v INTEGER NOT NULL)");
    await c.query("INSERT INTO bench_baseline (id, v) SELECT g, 0 FROM generate_series(1, 1024) g ON CONFLICT DO NOTHING");
  }
  let free = [...clients];
  let sequence = 0;
  try {
    return await measure(count, concurrency, async (i) => {
      const pair = free.pop()!;
      const [a, b] = pair;
      const gid = `bench_${process.pid}_${sequence++}`;
      try {
        await a.query("BEGIN");
        await a.query("UPDATE bench_baseline SET v = v - 1 WHERE id = $1", [1 + (i % 1024)]);
        await b.query("BEGIN");
        await b.query("UPDATE bench_baseline SET v = v + 1 WHERE id = $1", [1 + ((i * 7) % 1024)]);
        await Promise.all([a.query(`PREPARE TRANSACTION '${gid}_a'`), b.query(`PREPARE TRANSACTION '${gid}_b'`)]);
        await Promise.all([a.query(`COMMIT PREPARED '${gid}_a'`), b.query(`COMMIT PREPARED '${gid}_b'`)]);
      } finally {
        free.push(pair);
      }
    });
  } finally {
    for (const [a, b] of clients) {
      await a.end();
      await b.end();
    }
    free = [];
  }
}
