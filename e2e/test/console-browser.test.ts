/// <reference lib="dom" />
/// <reference lib="dom.iterable" />
/**
 * Issue 15: the operator's console in a real browser (Debian's Chromium, driven by playwright-core; no
 * browser download) against a real multi-process cluster, as `mycelium up` runs it. One cluster and
 * one `mycelium dashboard` process serve every test here, in order: the pages render the cluster's real
 * nodes and shards; a transfer appears on the transactions page; an in-doubt transaction (the
 * coordinator killed after every participant prepared) is resolved from the page by an admin; a
 * killed node-agent shows down and its shards fail over. Screenshots of each page go to
 * e2e/artifacts/console/ (not committed).
 *
 * Then the access rules, against the same cluster: read-only on loopback, admin by token or by an
 * admin client certificate, nothing for a web page elsewhere (Host and Origin checks).
 */
import { spawn, type ChildProcess } from "node:child_process";
import * as fs from "node:fs";
import * as https from "node:https";
import * as http from "node:http";
import * as path from "node:path";
import type { MyceliumClient } from "@mycelium/client";
import { ClusterAdmin, startDashboard, type Dashboard } from "@mycelium/console";
import { common, nodeagent, router } from "@mycelium/proto";
import { issueToDirectory } from "@mycelium/tls";
import { cliPath, eventually, runCli, TestCluster } from "@mycelium/testkit";
import { chromium, type Browser, type Page } from "playwright-core";

jest.setTimeout(300_000);

const chromiumPath = "/usr/bin/chromium";
const artifacts = path.join(__dirname, "..", "artifacts", "console");
// In CI .ci/run installs Chromium, so a missing browser fails there; locally the tests are skipped.
const haveBrowser = fs.existsSync(chromiumPath) || process.env.CI === "true";
if (!haveBrowser) process.stderr.write(`console browser tests skipped: ${chromiumPath} is missing (apt-get install -y chromium)\n`);
const describeBrowser = haveBrowser ? describe : describe.skip;

const heartbeatTimeoutMs = 3000;
const refreshMs = 500;

/** One HTTP(S) request, for the access rules and the snapshot. */
function request(target: string, options: { method?: string; headers?: Record<string, string>; body?: string; agent?: https.Agent } = {}): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const get = target.startsWith("https") ? https.request : http.request;
    const call = get(target, { method: options.method ?? "GET", headers: options.headers, ...(options.agent ? { agent: options.agent } : {}) }, (response) => {
      let body = "";
      response.on("data", (chunk: Buffer) => (body += chunk.toString()));
      response.on("end", () => resolve({ status: response.statusCode ?? 0, body }));
    });
    call.on("error", reject);
    call.end(options.body);
  });
}

describeBrowser("the operator's console in Chromium", () => {
  let cluster: TestCluster;
  let admin: MyceliumClient;
  let dashboard: ChildProcess;
  let url: string;
  let token: string;
  let browser: Browser;
  let page: Page;

  beforeAll(async () => {
    fs.mkdirSync(artifacts, { recursive: true });
    cluster = await TestCluster.start({
      validators: 2,
      miners: 1,
      // Participants wait this long before asking for a decision, so an in-doubt transaction stays in
      // doubt until the page resolves it.
      roleEnv: { "node-agent": { MYCELIUM_PREPARE_TIMEOUT: "120s" } },
    });
    admin = cluster.client("admin", { deadlineMs: 15_000 });
    await admin.router.setPolicy(router.SetPolicyRequest.create({ policy: common.TablePolicy.create({ table: "accounts", shardKeys: ["id"], initialShardCount: 8, replicationFactor: 0.5 }) }));
    await admin.execute("CREATE TABLE accounts (id INTEGER PRIMARY KEY, balance INTEGER NOT NULL)");
    const ids = Array.from({ length: 40 }, (_, i) => i + 1);
    await admin.execute(`INSERT INTO accounts (id, balance) VALUES ${ids.map(() => "(?, 1000)").join(", ")}`, ids);

    token = "console-test-token-0123456789";
    const tokenFile = path.join(cluster.dataDir, "dashboard-token");
    fs.writeFileSync(tokenFile, token, { mode: 0o600 });
    dashboard = spawn(process.execPath, [cliPath(), "dashboard", "--data-dir", cluster.dataDir, "--listen", "127.0.0.1:0", "--refresh", String(refreshMs), "--admin-token-file", tokenFile], {
      env: { PATH: process.env.PATH ?? "" },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let printed = "";
    dashboard.stdout!.on("data", (chunk: Buffer) => (printed += chunk.toString()));
    dashboard.stderr!.on("data", (chunk: Buffer) => process.stderr.write(`[dashboard] ${chunk.toString()}`));
    url = await eventually(() => {
      const match = /^dashboard (\S+)$/m.exec(printed);
      if (!match) throw new Error(`the dashboard printed no address yet: ${printed}`);
      return match[1]!;
    }, { timeoutMs: 30_000 });

    browser = await chromium.launch({
      executablePath: chromiumPath,
      args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"],
    });
    page = await browser.newPage({ viewport: { width: 1360, height: 900 } });
    page.setDefaultTimeout(30_000);
    page.on("pageerror", (error) => process.stderr.write(`[page error] ${error.message}\n`));
  });

  afterAll(async () => {
    await browser?.close();
    if (dashboard && dashboard.exitCode === null) {
      const exited = new Promise((resolve) => dashboard.once("exit", resolve));
      dashboard.kill("SIGTERM");
      await exited;
    }
    await cluster?.stop();
  });

  async function open(pageId: string): Promise<void> {
    await page.click(`[data-page=${pageId}]`);
    await page.waitForSelector(`[data-testid=page-${pageId}]`);
  }

  async function screenshot(name: string): Promise<void> {
    await page.screenshot({ path: path.join(artifacts, `${name}.png`), fullPage: true });
  }

  function nameOf(nodeId: string): string {
    return cluster.info.nodes.find((n) => n.nodeId === nodeId)!.name;
  }

  test("every page renders with the cluster's real nodes and shards", async () => {
    await page.goto(url);
    await page.waitForSelector("[data-testid=live-status][data-live=yes]");
    for (const node of cluster.info.nodes) {
      await page.waitForSelector(`[data-testid=nodes-table] tr[data-node-id="${node.nodeId}"][data-node-name="${node.name}"][data-status=up]`);
    }
    expect(await page.locator("[data-testid=nodes-table] tbody tr").count()).toBe(cluster.info.nodes.length);
    await screenshot("nodes");

    await open("shards");
    const { shards } = await admin.router.listShards(router.ListShardsRequest.create({ table: "accounts" }));
    expect(shards).toHaveLength(8);
    for (const shard of shards) {
      await page.waitForSelector(`[data-testid=shards-accounts] tr[data-shard-id="${shard.shardId}"][data-primary="${shard.primaryNodeId}"][data-epoch="${shard.epoch}"]`);
    }
    // Every copy is compared with its primary by checksum within a few refreshes.
    await page.waitForFunction(() => [...document.querySelectorAll("[data-testid=shards-accounts] .badge")].some((b) => b.textContent === "match"));
    await screenshot("shards");

    await open("conflicts");
    await page.waitForSelector("[data-testid=conflicts-table]");
    await screenshot("conflicts");

    await open("moves");
    expect(await page.textContent("[data-testid=moves-unavailable]")).toContain("rebalancing is not available yet");
    await screenshot("moves");
  });

  test("a transfer appears on the transactions page", async () => {
    await open("transactions");
    const { txId } = await admin.executeTransaction([
      { sql: "UPDATE accounts SET balance = balance - 10 WHERE id = ?", params: [1] },
      { sql: "UPDATE accounts SET balance = balance + 10 WHERE id = ?", params: [2] },
    ]);
    await page.waitForSelector(`[data-testid=recent-table] tr[data-tx-id="${txId}"][data-outcome=committed]`);
    // A few more, so the throughput and latency plots have something to draw.
    for (let i = 0; i < 10; i++) {
      await admin.executeTransaction([
        { sql: "UPDATE accounts SET balance = balance - 1 WHERE id = ?", params: [3 + i] },
        { sql: "UPDATE accounts SET balance = balance + 1 WHERE id = ?", params: [20 + i] },
      ]);
    }
    await page.waitForFunction(() => Number(document.querySelector(".card .card-value")?.textContent) > 0);
    await page.waitForSelector("[data-testid=chart-throughput] canvas");
    await page.waitForSelector("[data-testid=phases-table] tbody tr");
    await screenshot("transactions");
  });

  test("an in-doubt transaction is resolved from the page, by an admin, after confirming", async () => {
    // Two accounts whose primaries are on different nodes: a two-phase commit with two participants.
    const primaries = new Map<number, string>();
    for (let id = 1; id <= 40; id++) primaries.set(id, (await admin.explain("SELECT * FROM accounts WHERE id = ?", [id])).targets[0]!.primaryNodeId);
    const a = 31;
    const b = [...primaries.keys()].find((id) => id > 31 && primaries.get(id) !== primaries.get(a))!;
    const balance = async (id: number) => (await admin.execute("SELECT balance FROM accounts WHERE id = ?", [id])).rows[0]![0] as number;
    const before = [await balance(a), await balance(b)];

    // The coordinator dies right after every participant voted yes, before deciding anything.
    await cluster.kill("coordinator", "SIGTERM");
    await cluster.restart("coordinator", { MYCELIUM_FAULT_POINTS: "coordinator.after-all-prepares" });
    const tx = await admin.begin();
    await tx.execute("UPDATE accounts SET balance = balance - 7 WHERE id = ?", [a]);
    await tx.execute("UPDATE accounts SET balance = balance + 7 WHERE id = ?", [b]);
    await expect(tx.commit()).rejects.toThrow();
    await eventually(() => expect(cluster.process("coordinator").child.signalCode).toBe("SIGKILL"), { timeoutMs: 15_000 });
    await cluster.restart("coordinator", { MYCELIUM_FAULT_POINTS: "" });

    await open("transactions");
    const row = `[data-testid=in-doubt-table] tr[data-tx-id="${tx.id}"][data-kind=undecided]`;
    await page.waitForSelector(row);
    // Read-only until signed in: no buttons.
    expect(await page.getAttribute("[data-testid=session-role]", "data-role")).toBe("viewer");
    expect(await page.locator(`${row} button`).count()).toBe(0);
    await screenshot("in-doubt");

    await page.click("[data-action=sign-in]");
    await page.fill("[data-testid=token-input]", token);
    await page.keyboard.press("Enter");
    await page.waitForSelector("[data-testid=session-role][data-role=admin]");
    await page.click(`${row} button[data-action=commit]`);
    await page.waitForSelector("[data-testid=confirm-resolve]");
    expect(await page.textContent("[data-testid=confirm-resolve]")).toContain(tx.id);
    await screenshot("in-doubt-confirm");
    await page.click("[data-testid=confirm-resolve] button[data-action=confirm]");

    await page.waitForSelector(`[data-testid=resolve-message]:has-text("commit sent")`);
    await page.waitForSelector(row, { state: "detached" });
    await eventually(async () => expect([await balance(a), await balance(b)]).toEqual([before[0]! - 7, before[1]! + 7]), { timeoutMs: 20_000 });
    const adminPort = new ClusterAdmin(admin, cluster.address("replicator"));
    for (const node of cluster.info.nodes) expect(await adminPort.nodePrepared(cluster.nodeAddress(node.name))).toEqual([]);

    // The page follows the restarted coordinator's event stream again, and says nothing is wrong with it.
    const { txId: afterRestart } = await admin.executeTransaction([
      { sql: "UPDATE accounts SET balance = balance - 1 WHERE id = ?", params: [5] },
      { sql: "UPDATE accounts SET balance = balance + 1 WHERE id = ?", params: [6] },
    ]);
    await page.waitForSelector(`[data-testid=recent-table] tr[data-tx-id="${afterRestart}"][data-outcome=committed]`);
    await page.waitForFunction(() => !(document.querySelector("[data-testid=source-errors]")?.textContent ?? "").includes("coordinator"));
  });

  test("the CLI and the dashboard show the same nodes and shards (one set of admin calls)", async () => {
    const cliNodes = JSON.parse((await runCli(["nodes", "--json", "--data-dir", cluster.dataDir])).stdout) as Array<{ nodeId: string; status: string; shards: number }>;
    const cliShards = JSON.parse((await runCli(["shards", "accounts", "--json", "--data-dir", cluster.dataDir])).stdout) as Array<{ shardId: string; primary: string; epoch: number }>;
    const snapshot = JSON.parse((await request(`${url}api/snapshot`)).body) as { nodes: Array<{ nodeId: string; status: string; shardCount: number }>; tables: Array<{ table: string; shards: Array<{ shardId: string; primaryNodeId: string; epoch: number }> }> };
    expect(snapshot.nodes.map((n) => [n.nodeId, n.status, n.shardCount]).sort()).toEqual(cliNodes.map((n) => [n.nodeId, n.status.replace("NODE_STATUS_", "").toLowerCase(), n.shards]).sort());
    const accounts = snapshot.tables.find((t) => t.table === "accounts")!;
    expect(accounts.shards.map((s) => [s.shardId, s.primaryNodeId, s.epoch])).toEqual(cliShards.map((s) => [s.shardId, s.primary, Number(s.epoch)]));
    for (const command of [["txn", "list"], ["conflicts", "list"]]) expect((await runCli([...command, "--data-dir", cluster.dataDir])).code).toBe(0);
  });

  test("a killed node-agent shows down and its shards fail over, within the heartbeat timeout and a refresh", async () => {
    const { shards } = await admin.router.listShards(router.ListShardsRequest.create({ table: "accounts" }));
    const victim = shards[0]!.primaryNodeId;
    const led = shards.filter((s) => s.primaryNodeId === victim).map((s) => s.shardId);
    const name = nameOf(victim);

    const killedAt = Date.now();
    await cluster.kill(name, "SIGKILL");
    await open("nodes");
    await page.waitForSelector(`[data-testid=nodes-table] tr[data-node-id="${victim}"][data-status=down]`);
    const downAfterMs = Date.now() - killedAt;
    await screenshot("node-down");
    await open("shards");
    // A function, not a string: the page's Content-Security-Policy forbids evaluating strings.
    await page.waitForFunction(
      ({ victim, led }) =>
        led.every((id) => {
          const row = document.querySelector(`[data-testid=shards-accounts] tr[data-shard-id="${id}"]`);
          return row !== null && row.getAttribute("data-primary") !== victim;
        }),
      { victim, led },
    );
    const failedOverAfterMs = Date.now() - killedAt;
    await screenshot("failover");
    process.stdout.write(`console: node shown down ${downAfterMs} ms and its ${led.length} shards failed over ${failedOverAfterMs} ms after the kill (heartbeat timeout ${heartbeatTimeoutMs} ms, refresh ${refreshMs} ms)\n`);
    // Detection takes the heartbeat timeout itself; the page may add two refreshes and a loaded
    // machine's scheduling (CI runs on two shared cores).
    expect(failedOverAfterMs).toBeLessThan(heartbeatTimeoutMs + 2 * refreshMs + 6000);
    const after = await admin.router.listShards(router.ListShardsRequest.create({ table: "accounts" }));
    for (const id of led) expect(after.shards.find((s) => s.shardId === id)!.epoch).toBeGreaterThan(shards.find((s) => s.shardId === id)!.epoch);
  });

  describe("who may do what", () => {
    const write = { "content-type": "application/json", "x-mycelium-console": "1" };

    test("loopback: read-only without signing in; writes need the page's header and origin; a foreign Host is refused", async () => {
      expect(JSON.parse((await request(`${url}api/session`)).body)).toMatchObject({ role: "viewer", via: "loopback" });
      const resolve = JSON.stringify({ txId: "x", decision: "abort" });
      expect((await request(`${url}api/in-doubt/resolve`, { method: "POST", headers: write, body: resolve })).status).toBe(403);
      expect((await request(`${url}api/session`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ token }) })).status).toBe(403);
      expect((await request(`${url}api/session`, { method: "POST", headers: { ...write, origin: "http://evil.example" }, body: JSON.stringify({ token }) })).status).toBe(403);
      expect((await request(`${url}api/session`, { method: "POST", headers: write, body: JSON.stringify({ token: "wrong-token-wrong-token" }) })).status).toBe(401);
      expect((await request(`${url}api/snapshot`, { headers: { host: "evil.example" } })).status).toBe(421);
      const signedIn = await request(`${url}api/session`, { method: "POST", headers: write, body: JSON.stringify({ token }) });
      expect(signedIn.status).toBe(200);
    });

    test("exposed: needs HTTPS and a way to tell operators apart; client certificates decide admin or read-only", async () => {
      const clusterAdmin = new ClusterAdmin(admin, cluster.address("replicator"));
      await expect(startDashboard({ admin: clusterAdmin, networkId: cluster.info.networkId, listen: { host: "0.0.0.0", port: 0 } })).rejects.toThrow(/HTTPS/);
      const layout = cluster.cluster.layout;
      issueToDirectory(layout.certsDir, { networkId: cluster.info.networkId, role: "admin", name: "dashboard-server", hosts: ["localhost", "127.0.0.1"] });
      const server = layout.certificate("admin", "dashboard-server");
      let secure: Dashboard | null = null;
      try {
        secure = await startDashboard({
          admin: clusterAdmin,
          networkId: cluster.info.networkId,
          listen: { host: "127.0.0.1", port: 0 },
          https: { certPath: server.certPath, keyPath: server.keyPath, clientCaPath: server.caPath },
          refreshMs: 1000,
        });
        const agentFor = (role: "admin" | "client") => {
          const paths = layout.certificate(role, role);
          return new https.Agent({ ca: fs.readFileSync(paths.caPath), cert: fs.readFileSync(paths.certPath), key: fs.readFileSync(paths.keyPath) });
        };
        expect(JSON.parse((await request(`${secure.url}api/session`, { agent: agentFor("admin") })).body)).toMatchObject({ role: "admin", via: "certificate", identity: `spiffe://${cluster.info.networkId}/admin/admin` });
        expect(JSON.parse((await request(`${secure.url}api/session`, { agent: agentFor("client") })).body)).toMatchObject({ role: "viewer", via: "certificate" });
        const snapshot = JSON.parse((await request(`${secure.url}api/snapshot`, { agent: agentFor("client") })).body) as { nodes: unknown[] };
        expect(snapshot.nodes).toHaveLength(cluster.info.nodes.length);
        const denied = await request(`${secure.url}api/in-doubt/resolve`, { method: "POST", headers: write, body: JSON.stringify({ txId: "x", decision: "abort" }), agent: agentFor("client") });
        expect(denied.status).toBe(403);
        // Without a client certificate there is no connection at all.
        const noCertificate = new https.Agent({ ca: fs.readFileSync(server.caPath) });
        await expect(request(`${secure.url}api/session`, { agent: noCertificate })).rejects.toThrow();
      } finally {
        await secure?.close();
      }
    });
  });
});
