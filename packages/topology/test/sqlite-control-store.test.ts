import { execFile } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { openControlStore } from "@mycelium/topology";

// SQLite-only behaviour: several processes sharing one file, and the caller's clock for leases.

const root = fs.mkdtempSync(path.join(os.tmpdir(), "myc-control-sqlite-"));
afterAll(() => fs.rmSync(root, { recursive: true, force: true }));

const registerTs = path.join(__dirname, "../../db/test/support/register-ts.js");

function runChild(url: string, count: number): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(process.execPath, ["-r", registerTs, path.join(__dirname, "support/increment-child.ts"), url, String(count)], (error, stdout, stderr) => {
      if (error) reject(new Error(`${error.message}\n${stderr}`));
      else resolve(stdout);
    });
  });
}

test("several processes share one SQLite control store: every compare-and-set increment lands once", async () => {
  const url = `sqlite:${path.join(root, "shared.db")}`;
  const store = await openControlStore(url);
  try {
    await store.commit([{ kind: "put", key: "counter", value: "0", expectedVersion: 0 }]);
    const outputs = await Promise.all([runChild(url, 40), runChild(url, 40), runChild(url, 40)]);
    for (const output of outputs) expect(output).toMatch(/^DONE lost=\d+/);
    expect((await store.get("counter"))!.value).toBe("120");
  } finally {
    await store.close();
  }
}, 120_000);

test("leases expire by the caller's clock on SQLite", async () => {
  let now = 1_000_000;
  const clock = () => now;
  const url = `sqlite:${path.join(root, "clock.db")}`;
  const a = await openControlStore(url, { clock });
  const b = await openControlStore(url, { clock });
  try {
    expect(await a.acquireLease("primary/s1", "A", 5_000)).toEqual({ acquired: true, holder: "A", expiresAtMs: 1_005_000, token: 1 });
    now = 1_004_999;
    expect(await b.acquireLease("primary/s1", "B", 5_000)).toMatchObject({ acquired: false, holder: "A" });
    now = 1_005_000;
    expect(await b.acquireLease("primary/s1", "B", 5_000)).toEqual({ acquired: true, holder: "B", expiresAtMs: 1_010_000, token: 2 });
    expect(await a.getLease("primary/s1")).toEqual({ holder: "B", expiresAtMs: 1_010_000, token: 2 });
    expect(await a.nowMs()).toBe(1_005_000);
  } finally {
    await a.close();
    await b.close();
  }
});

test("bad URLs and options are refused with CONFIG", async () => {
  await expect(openControlStore("sqlite:")).rejects.toMatchObject({ code: "CONFIG" });
  await expect(openControlStore("mysql://x")).rejects.toMatchObject({ code: "CONFIG" });
  await expect(openControlStore(`sqlite:${path.join(root, "x.db")}`, { maxConnections: 3 })).rejects.toMatchObject({ code: "CONFIG" });
  await expect(openControlStore("postgres://127.0.0.1:1/x", { clock: Date.now })).rejects.toMatchObject({ code: "CONFIG" });
  await expect(openControlStore("postgres://127.0.0.1:1/x", { sslMode: "disable", connectTimeoutMs: 2000 })).rejects.toMatchObject({ code: "UNAVAILABLE" });
});
