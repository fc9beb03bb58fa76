/**
 * Measures analysis cost per statement: cache miss (full analysis: lex + parse + walk) and cache hit, and the
 * shard-key predicate. Run from the repository root after a build:
 *   pnpm --filter @mycelium/sql measure
 * Numbers are for the machine they ran on; DESIGN.md records one run.
 */
import { analyze, createAnalysisCache, loadSqlParser, shardKeyPredicate, type Dialect } from "../src";

const statements: Array<[string, string]> = [
  ["point select", "SELECT id, name, balance FROM accounts WHERE id = ?"],
  ["range + order + limit", "SELECT * FROM orders WHERE tenant = ? AND created BETWEEN ? AND ? ORDER BY created DESC LIMIT 50"],
  ["aggregate", "SELECT dept, COUNT(*) AS n, AVG(salary) FROM emp WHERE region IN ('eu', 'us') GROUP BY dept HAVING COUNT(*) > 1 ORDER BY n DESC"],
  ["join", "SELECT o.id, c.name FROM orders o JOIN customers c ON o.customer_id = c.id WHERE o.tenant = 7 AND c.tenant = 7"],
  ["insert 3 rows", "INSERT INTO accounts (id, name, balance) VALUES (1, 'a', 10), (2, 'b', 20), (?, ?, ?)"],
  ["update", "UPDATE accounts SET balance = balance - ? WHERE id = ?"],
  ["delete", "DELETE FROM sessions WHERE user_id = ? AND expires < ?"],
];

function time(iterations: number, fn: (i: number) => void): number {
  for (let i = 0; i < Math.min(iterations, 2000); i++) fn(i);
  const start = process.hrtime.bigint();
  for (let i = 0; i < iterations; i++) fn(i);
  return Number(process.hrtime.bigint() - start) / iterations / 1000;
}

async function main(): Promise<void> {
  await loadSqlParser();
  console.log(`node ${process.version}, ${process.arch}`);
  console.log("statement                 dialect   miss µs  hit µs  predicate µs");
  for (const dialect of ["sqlite", "postgres"] as Dialect[]) {
    for (const [name, sql] of statements) {
      // A miss: a fresh literal each time defeats any cache (comment makes the text unique).
      const miss = time(5000, (i) => analyze(`${sql} -- ${i}`, { dialect }));
      const cache = createAnalysisCache({ maxEntries: 1000 });
      cache.analyze(sql, { dialect });
      const hit = time(200_000, () => cache.analyze(sql, { dialect }));
      const analysis = analyze(sql, { dialect });
      const table = analysis.tables[0]!;
      const params = Array.from({ length: analysis.parameterCount }, (_, i) => i + 1);
      const predicate = time(200_000, () => shardKeyPredicate(analysis, table, ["id"], params));
      console.log(`${name.padEnd(25)} ${dialect.padEnd(9)} ${miss.toFixed(1).padStart(7)} ${hit.toFixed(2).padStart(7)} ${predicate.toFixed(2).padStart(12)}`);
    }
  }
}

void main();
