import * as fs from "node:fs";
import type { Command } from "commander";
import { newAdminToken, startDashboard, type Dashboard, type MetricsTarget } from "@mycelium/console";
import { ClusterLayout, defaultDataDir, type ClusterInfo, type ConnectionFlags } from "../local-cluster/cluster-info";
import { adminOf, connect, withConnectionFlags } from "./connect";

export interface DashboardFlags extends ConnectionFlags {
  listen: string;
  refresh: string;
  adminTokenFile?: string;
  /** commander's --no-admin-token */
  adminToken: boolean;
  tlsCert?: string;
  tlsKey?: string;
  clientCa?: string;
  metrics: string[];
}

export function registerDashboard(program: Command): void {
  withConnectionFlags(
    program
      .command("dashboard")
      .description("serve the operator's web console (nodes, shards, transactions, conflicts, moves) until Ctrl-C")
      .option("--listen <host:port>", "where to serve it (loopback unless exposed on purpose; port 0 picks a free one)", "127.0.0.1:7480")
      .option("--refresh <ms>", "how often the cluster is asked and the pages update", "1000")
      .option("--admin-token-file <path>", "the admin token for signing in (default: a new random token, printed as a sign-in link)")
      .option("--no-admin-token", "no token sign-in (only client certificates can act)")
      .option("--tls-cert <path>", "serve HTTPS with this certificate (PEM)")
      .option("--tls-key <path>", "… and this key")
      .option("--client-ca <path>", "require client certificates signed by this CA (the cluster's): admin identities act, client identities read")
      .option("--metrics <name=url>", "a service's /metrics URL (repeatable; a local cluster's are found in its data directory)", (v: string, p: string[]) => [...p, v], [] as string[]),
  ).action(async (flags: DashboardFlags) => {
    const dashboard = await startFromFlags(flags, (line) => process.stderr.write(`${line}\n`));
    process.stdout.write(`dashboard ${dashboard.handle.url}\n`);
    if (dashboard.signInUrl) process.stdout.write(`admin sign-in (keep it private): ${dashboard.signInUrl}\n`);
    process.stdout.write("Ctrl-C stops\n");
    await new Promise<void>((resolve) => {
      const stop = () => resolve();
      process.once("SIGINT", stop);
      process.once("SIGTERM", stop);
    });
    await dashboard.close();
  });
}

/** Start a dashboard from command-line flags (also used by `mycelium up --dashboard`). */
export async function startFromFlags(flags: DashboardFlags, log: (line: string) => void): Promise<{ handle: Dashboard; signInUrl: string | null; close(): Promise<void> }> {
  const listen = parseListen(flags.listen);
  const refreshMs = Number(flags.refresh);
  if (!Number.isInteger(refreshMs)) throw new Error(`--refresh expects milliseconds, got "${flags.refresh}"`);
  if (Boolean(flags.tlsCert) !== Boolean(flags.tlsKey)) throw new Error("--tls-cert and --tls-key go together");
  if (flags.clientCa && !flags.tlsCert) throw new Error("--client-ca needs HTTPS: give --tls-cert and --tls-key too");
  const token = !flags.adminToken ? null : flags.adminTokenFile ? readToken(flags.adminTokenFile) : newAdminToken();
  const client = connect(flags, "admin");
  const info = flags.coordinator ? null : new ClusterLayout(flags.dataDir ?? defaultDataDir).read();
  try {
    const handle = await startDashboard({
      listen,
      admin: adminOf(client),
      networkId: flags.networkId ?? info?.networkId ?? "testnet",
      metricsTargets: [...(info ? localMetricsTargets(info) : []), ...flags.metrics.map(parseMetricsFlag)],
      nodeNames: new Map((info?.nodes ?? []).map((n) => [n.nodeId, n.name])),
      refreshMs,
      adminToken: token,
      ...(flags.tlsCert && flags.tlsKey ? { https: { certPath: flags.tlsCert, keyPath: flags.tlsKey, ...(flags.clientCa ? { clientCaPath: flags.clientCa } : {}) } } : {}),
      log,
    });
    // The token travels in the fragment, which browsers never send to a server or a log.
    const signInUrl = token && !flags.adminTokenFile ? `${handle.url}#signin=${encodeURIComponent(token)}` : null;
    return {
      handle,
      signInUrl,
      async close() {
        await handle.close();
        client.close();
      },
    };
  } catch (error) {
    client.close();
    throw error;
  }
}

/** Every service of a local cluster, from its cluster.json. */
function localMetricsTargets(info: ClusterInfo): MetricsTarget[] {
  const url = (port: number) => `http://${info.host.includes(":") ? `[${info.host}]` : info.host}:${port}/metrics`;
  return [
    { role: "coordinator", name: "coordinator", url: url(info.services.coordinator.opsPort) },
    { role: "shard-router", name: "shard-router", url: url(info.services["shard-router"].opsPort) },
    { role: "replicator", name: "replicator", url: url(info.services.replicator.opsPort) },
    ...(info.replicas ?? []).map((r): MetricsTarget => ({ role: r.role, name: r.name, url: url(r.opsPort) })),
    ...info.nodes.map((n): MetricsTarget => ({ role: "node-agent", name: n.name, nodeId: n.nodeId, url: url(n.opsPort) })),
  ];
}

function parseMetricsFlag(text: string): MetricsTarget {
  const [name, url] = [text.slice(0, text.indexOf("=")), text.slice(text.indexOf("=") + 1)];
  if (!name || !/^https?:\/\//.test(url)) throw new Error(`--metrics expects name=http://host:port/metrics, got "${text}"`);
  // A coordinator's series (transaction rates) are recognised by their names, whatever the role given.
  return { role: name.startsWith("coordinator") ? "coordinator" : name.startsWith("replicator") ? "replicator" : name.startsWith("shard-router") ? "shard-router" : "node-agent", name, url };
}

export function parseListen(text: string): { host: string; port: number } {
  const match = /^(?:\[([^\]]+)\]|([^:]+)):(\d+)$/.exec(text);
  const port = Number(match?.[3]);
  if (!match || !Number.isInteger(port) || port < 0 || port > 65535) throw new Error(`--listen expects host:port (e.g. 127.0.0.1:7480), got "${text}"`);
  return { host: match[1] ?? match[2]!, port };
}

function readToken(path: string): string {
  let token: string;
  try {
    token = fs.readFileSync(path, "utf8").trim();
  } catch (error) {
    throw new Error(`cannot read the admin token from ${path}: ${(error as Error).message}`);
  }
  if (token.length < 16) throw new Error(`the admin token in ${path} is shorter than 16 characters; use a long random one (e.g. openssl rand -base64 24)`);
  return token;
}
