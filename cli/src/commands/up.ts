import type { Command } from "commander";
import { LocalCluster } from "../local-cluster/local-cluster";
import { defaultDataDir } from "../local-cluster/cluster-info";
import { startFromFlags } from "./dashboard";

interface UpOptions {
  dataDir: string;
  validators: string;
  miners: string;
  networkId?: string;
  basePort: string;
  traces?: boolean;
  logLevel: string;
  backend: string;
  controlStore: string;
  postgresBinDir?: string;
  coordinators: string;
  routers: string;
  dashboard?: string | boolean;
}

export function registerUp(program: Command): void {
  program
    .command("up")
    .description("run a whole cluster on this machine (SQLite, mutual TLS on loopback) until Ctrl-C")
    .option("--data-dir <dir>", "where the cluster keeps its CA, keys, data and logs", defaultDataDir)
    .option("--validators <n>", "validator nodes", "2")
    .option("--miners <n>", "miner nodes", "1")
    .option("--network-id <id>", "network id (new clusters only)")
    .option("--base-port <port>", "first port to try; 0 picks free ports", "7400")
    .option("--traces", "write every span to <data-dir>/traces.jsonl (follow them with `mycelium traces tail`)")
    .option("--dashboard [host:port]", "also serve the web console (default 127.0.0.1:7480)")
    .option("--log-level <level>", "log level of the services", "info")
    .option("--backend <kind>", "node databases: sqlite, postgres (each node its own database) or mixed (validators on PostgreSQL)", "sqlite")
    .option("--control-store <kind>", "control store: sqlite or postgres", "sqlite")
    .option("--postgres-bin-dir <dir>", "start PostgreSQL from these binaries (default: initdb/pg_ctl on PATH; or set DATABASE_URL to use a running server)")
    .option("--coordinators <n>", "coordinator replicas", "1")
    .option("--routers <n>", "shard-router replicas", "1")
    .action(async (options: UpOptions) => {
      if (!["sqlite", "postgres", "mixed"].includes(options.backend)) throw new Error(`--backend must be sqlite, postgres or mixed, not ${options.backend}`);
      if (!["sqlite", "postgres"].includes(options.controlStore)) throw new Error(`--control-store must be sqlite or postgres, not ${options.controlStore}`);
      // DATABASE_URL (the seed's variable) names an existing server to create the databases on.
      const existingServer = process.env.DATABASE_URL ?? process.env.MYCELIUM_DATABASE_URL;
      const cluster = new LocalCluster({
        backend: options.backend as "sqlite" | "postgres" | "mixed",
        controlStore: options.controlStore as "sqlite" | "postgres",
        postgres: existingServer ? { url: existingServer } : { ...(options.postgresBinDir ? { binDir: options.postgresBinDir } : {}) },
        coordinators: count("--coordinators", options.coordinators),
        routers: count("--routers", options.routers),
        dataDir: options.dataDir,
        validators: count("--validators", options.validators),
        miners: count("--miners", options.miners),
        ...(options.networkId ? { networkId: options.networkId } : {}),
        basePort: count("--base-port", options.basePort),
        traces: Boolean(options.traces),
        ...(otlpEnvironment() ? { env: otlpEnvironment()! } : {}),
        logLevel: options.logLevel,
        onProgress: (line) => process.stdout.write(line + "\n"),
      });
      let stopping = false;
      let dashboard: Awaited<ReturnType<typeof startFromFlags>> | null = null;
      const stop = (signal: string) => {
        if (stopping) return;
        stopping = true;
        process.stdout.write(`${signal}: stopping the cluster\n`);
        (dashboard?.close() ?? Promise.resolve()).catch(() => undefined).then(() => cluster.stop()).then(
          () => {
            process.stdout.write("stopped\n");
            process.exit(0);
          },
          (error: unknown) => {
            process.stderr.write(`error while stopping: ${String(error)}\n`);
            process.exit(1);
          },
        );
      };
      process.on("SIGINT", () => stop("SIGINT"));
      process.on("SIGTERM", () => stop("SIGTERM"));
      cluster.onExit((handle, code, signal) => {
        if (!cluster.isStopping) process.stderr.write(`${handle.name} exited unexpectedly (${code ?? signal}); see ${handle.logPath}\n`);
      });
      process.stdout.write(`starting a local Mycelium cluster in ${options.dataDir}\n`);
      try {
        await cluster.start();
      } catch (error) {
        process.stderr.write(`${error instanceof Error ? error.message : String(error)}\n`);
        await cluster.stop(2000);
        process.exit(1);
      }
      if (options.traces) process.stdout.write(`traces       ${cluster.layout.traceFile}; follow them: mycelium traces tail --data-dir ${options.dataDir}\n`);
      if (options.dashboard) {
        try {
          dashboard = await startFromFlags(
            { dataDir: options.dataDir, listen: options.dashboard === true ? "127.0.0.1:7480" : options.dashboard, refresh: "1000", adminToken: true, metrics: [] },
            (line) => process.stderr.write(`dashboard: ${line}\n`),
          );
          process.stdout.write(`dashboard    ${dashboard.handle.url}  admin sign-in: ${dashboard.signInUrl}\n`);
        } catch (error) {
          process.stderr.write(`the dashboard did not start: ${(error as Error).message}\n`);
        }
      }
      process.stdout.write(`network ${cluster.info.networkId}; try: mycelium sql --data-dir ${options.dataDir} -e "SELECT 1"   (Ctrl-C stops)\n`);
    });
}

function count(flag: string, text: string): number {
  const value = Number(text);
  if (!Number.isInteger(value) || value < 0) throw new Error(`${flag} expects a whole number ≥ 0, got "${text}"`);
  return value;
}

/**
 * The OpenTelemetry exporter settings `up` hands to every service: OTEL_* variables of its own
 * environment (e.g. OTEL_EXPORTER_OTLP_ENDPOINT pointing at `mycelium traces tail --otlp`), with spans
 * exported every 200 ms rather than the SDK's 5 s, so a tail shows a transaction right after it ends.
 */
function otlpEnvironment(): Record<string, string> | null {
  const otel = Object.fromEntries(Object.entries(process.env).filter((entry): entry is [string, string] => entry[0].startsWith("OTEL_") && entry[1] !== undefined));
  if (!otel.OTEL_EXPORTER_OTLP_ENDPOINT && !otel.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT) return null;
  return { OTEL_BSP_SCHEDULE_DELAY: "200", ...otel };
}
