import * as fs from "node:fs";
import * as path from "node:path";
import { loadSqlParser, type Dialect } from "@mycelium/sql";
import { fixtureSnapshot } from "./support/fixture";
import { expectedFor, readGoldenFile, runGoldenCase, writeGoldenFile, type GoldenCase } from "./support/golden";

/**
 * Golden routing plans over the fixed cluster of support/fixture.ts. Each case runs in the dialects it
 * names; a missing or different expectation fails. `UPDATE_GOLDEN=1` rewrites the files; `GOLDEN_FILTER`
 * runs matching case names only; golden/debug.case holds one case to iterate on.
 */
const directory = path.join(__dirname, "golden");
const files = fs.readdirSync(directory).filter((f) => f.endsWith(".golden") || f === "debug.case").sort();
const update = process.env.UPDATE_GOLDEN === "1";
const filter = process.env.GOLDEN_FILTER;

beforeAll(() => loadSqlParser());

for (const file of files) {
  const full = path.join(directory, file);
  const golden = readGoldenFile(full);
  const actual = new Map<GoldenCase, Map<Dialect, string>>();
  describe(file, () => {
    const rows = golden.cases.flatMap((c) => c.dialects.map((dialect) => [c.name, dialect, c] as const)).filter(([name]) => !filter || name.includes(filter));
    if (rows.length === 0) return test.skip("no case matches", () => undefined);
    test.each(rows)("%s [%s]", (_name, dialect, c) => {
      const text = runGoldenCase(c, dialect, fixtureSnapshot());
      if (!actual.has(c)) actual.set(c, new Map());
      actual.get(c)!.set(dialect, text);
      if (!update) expect(text).toBe(expectedFor(c, dialect));
    });
    if (update) afterAll(() => writeGoldenFile(full, golden, actual));
  });
}

test("the golden files hold at least 100 cases over both dialects", () => {
  const cases = files.filter((f) => f.endsWith(".golden")).flatMap((f) => readGoldenFile(path.join(directory, f)).cases);
  expect(cases.length).toBeGreaterThanOrEqual(100);
  const runs = cases.flatMap((c) => c.dialects);
  expect(runs.filter((d) => d === "sqlite").length).toBeGreaterThanOrEqual(100);
  expect(runs.filter((d) => d === "postgres").length).toBeGreaterThanOrEqual(80);
});
