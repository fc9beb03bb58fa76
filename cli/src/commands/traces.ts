import * as fs from "node:fs";
import type { Command } from "commander";
import { findTransaction, renderTransaction, startTraceTail, type AssembledTransaction, type TransactionFilter } from "@mycelium/console";
import { ClusterLayout, defaultDataDir } from "../local-cluster/cluster-info";
import { parseListen } from "./dashboard";

interface TraceFlags {
  dataDir: string;
  file?: string;
  color?: boolean;
  width: string;
}

interface TailFlags extends TraceFlags {
  otlp?: string | boolean;
  slow?: string;
  errors?: boolean;
  table?: string;
  all?: boolean;
}

export function registerTraces(program: Command): void {
  const traces = program.command("traces").description("follow and show distributed traces as waterfalls (spans from every service, one transaction at a time)");

  withTraceFlags(
    traces
      .command("tail")
      .description("print each finished transaction as a waterfall as it happens (Ctrl-C stops)")
      .option("--otlp [host:port]", "also receive spans over OTLP/HTTP here (point services' OTEL_EXPORTER_OTLP_ENDPOINT at it)")
      .option("--slow <ms>", "only transactions that took at least this long")
      .option("--errors", "only transactions that aborted or had a failed span")
      .option("--table <name>", "only transactions that touched this table")
      .option("--all", "every trace, not only transactions (heartbeats, replication)"),
  ).action(async (flags: TailFlags) => {
    const filter: TransactionFilter = { transactionsOnly: !flags.all };
    if (flags.slow !== undefined) {
      const slow = Number(flags.slow);
      if (!Number.isFinite(slow) || slow < 0) throw new Error(`--slow expects milliseconds, got "${flags.slow}"`);
      filter.slowerThanMs = slow;
    }
    if (flags.errors) filter.errorsOnly = true;
    if (flags.table) filter.table = flags.table;
    const otlp = flags.otlp === undefined || flags.otlp === false ? undefined : parseListen(flags.otlp === true ? "127.0.0.1:4318" : flags.otlp);
    const file = flags.file ?? (otlp ? undefined : defaultTraceFile(flags.dataDir));
    const names = nodeNames(flags.dataDir);
    const width = barWidth(flags.width);
    const print = (tx: AssembledTransaction) => process.stdout.write(renderTransaction(tx, { barWidth: width, color: colorWanted(flags), names }).join("\n") + "\n\n");
    const tail = await startTraceTail({
      ...(file ? { file } : {}),
      ...(otlp ? { otlp } : {}),
      filter,
      onTransaction: print,
      onError: (error) => process.stderr.write(`traces: ${error.message}\n`),
    });
    const sources = [file ? `following ${file}` : null, tail.receiver ? `receiving OTLP at ${tail.receiver.endpoint} (OTEL_EXPORTER_OTLP_ENDPOINT=${tail.receiver.endpoint})` : null].filter(Boolean);
    process.stderr.write(`${sources.join("; ")}; Ctrl-C stops\n`);
    await new Promise<void>((resolve) => {
      process.once("SIGINT", () => resolve());
      process.once("SIGTERM", () => resolve());
    });
    await tail.stop();
  });

  withTraceFlags(traces.command("show <id>").description("one transaction's waterfall, by transaction id or trace id (a unique prefix is enough)")).action(async (id: string, flags: TraceFlags) => {
    const file = flags.file ?? defaultTraceFile(flags.dataDir);
    if (!fs.existsSync(file)) throw new Error(`no trace file at ${file}: start the cluster with \`mycelium up --traces\` (or set MYCELIUM_TRACE_FILE), or pass --file`);
    const tx = await findTransaction(file, id);
    if (!tx) {
      process.stderr.write(`no transaction or trace ${id} in ${file}\n`);
      process.exitCode = 1;
      return;
    }
    process.stdout.write(renderTransaction(tx, { barWidth: barWidth(flags.width), color: colorWanted(flags), names: nodeNames(flags.dataDir) }).join("\n") + "\n");
  });
}

function withTraceFlags(command: Command): Command {
  return command
    .option("--data-dir <dir>", "data directory of a local cluster started with `mycelium up --traces`", defaultDataDir)
    .option("--file <path>", "the JSON-lines trace file (MYCELIUM_TRACE_FILE); default <data-dir>/traces.jsonl")
    .option("--no-color", "no ANSI colours")
    .option("--width <columns>", "width of the waterfall bars", "40");
}

function defaultTraceFile(dataDir: string): string {
  const layout = new ClusterLayout(dataDir);
  if (!layout.read()) throw new Error(`no cluster in ${dataDir} (missing cluster.json): pass --file <traces.jsonl>, --otlp, or --data-dir of a cluster started with \`mycelium up --traces\``);
  return layout.traceFile;
}

/**
 * Node ids to the local cluster's names (v1, m1), when there is a local cluster. Read again (at most
 * every 2 s) when an id is not known: a tail may start before the cluster does.
 */
function nodeNames(dataDir: string): (instance: string) => string | undefined {
  const layout = new ClusterLayout(dataDir);
  let names = new Map<string, string>();
  let readAtMs = -Infinity;
  return (instance) => {
    if (!names.has(instance) && Date.now() - readAtMs >= 2000) {
      readAtMs = Date.now();
      try {
        names = new Map((layout.read()?.nodes ?? []).map((n) => [n.nodeId, n.name]));
      } catch {
        // A cluster.json being written right now is read on a later miss.
      }
    }
    return names.get(instance);
  };
}

function colorWanted(flags: TraceFlags): boolean {
  return flags.color !== false && Boolean(process.stdout.isTTY) && !process.env.NO_COLOR;
}

function barWidth(text: string): number {
  const width = Number(text);
  if (!Number.isInteger(width) || width < 10 || width > 400) throw new Error(`--width expects 10 to 400 columns, got "${text}"`);
  return width;
}
