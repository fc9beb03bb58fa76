import type { ControlStore } from "./control-store";
import { type ControlStoreSslMode, PostgresPort, SqlitePort } from "./backend/ports";
import { SqlControlStore } from "./backend/sql-control-store";
import { TopologyError } from "./topology-error";

export interface ControlStoreOptions {
  /** SQLite: PRAGMA synchronous (decisions must survive power loss, so FULL). @default "FULL" */
  synchronous?: "FULL" | "NORMAL";
  /** SQLite: busy_timeout of one attempt; kept short because it blocks the event loop. @default 5 */
  busyTimeoutMs?: number;
  /** SQLite: longest total wait for another process's write lock before BUSY. @default 10000 */
  lockWaitTimeoutMs?: number;
  /** SQLite: the lease clock (SQLite has no shared clock of its own). @default Date.now */
  clock?: () => number;
  /** PostgreSQL: pool size. @default 10 */
  maxConnections?: number;
  /** PostgreSQL: connect timeout, also the longest wait for a pooled connection. @default 10000 */
  connectTimeoutMs?: number;
  /** PostgreSQL: idle connection timeout. @default 300000 */
  idleTimeoutMs?: number;
  /** PostgreSQL: schema holding the tables. @default "mycelium_control" */
  schema?: string;
  /** PostgreSQL: libpq-style SSL mode. @default "prefer" */
  sslMode?: ControlStoreSslMode;
}

function positiveInteger(name: string, value: number): number {
  if (!Number.isSafeInteger(value) || value < 1) throw new TopologyError("CONFIG", `${name} must be a positive integer, got ${value}`);
  return value;
}

/**
 * Opens the control store named by `url`: `sqlite:<path>` (the embedded default; several processes on one
 * machine may share the file) or `postgres://…` / `postgresql://…` (shared by every replica of every service).
 * Creates the tables when missing.
 */
export async function openControlStore(url: string, options: ControlStoreOptions = {}): Promise<ControlStore> {
  if (typeof url !== "string" || url.length === 0) throw new TopologyError("CONFIG", "the control store URL is empty");
  if (url.startsWith("sqlite:")) {
    const file = url.slice("sqlite:".length).replace(/^\/\/(?=\/)/, "");
    if (file.length === 0 || file === ":memory:") {
      throw new TopologyError("CONFIG", `the SQLite control store needs a file path (sqlite:<path>), got ${url}`);
    }
    for (const name of ["maxConnections", "connectTimeoutMs", "idleTimeoutMs", "schema", "sslMode"] as const) {
      if (options[name] !== undefined) throw new TopologyError("CONFIG", `${name} applies to the PostgreSQL control store only`);
    }
    const synchronous = options.synchronous ?? "FULL";
    if (synchronous !== "FULL" && synchronous !== "NORMAL") throw new TopologyError("CONFIG", `synchronous must be FULL or NORMAL`);
    const port = await SqlitePort.open({
      file,
      synchronous,
      busyTimeoutMs: positiveInteger("busyTimeoutMs", options.busyTimeoutMs ?? 5),
      lockWaitTimeoutMs: positiveInteger("lockWaitTimeoutMs", options.lockWaitTimeoutMs ?? 10_000),
      clock: options.clock ?? Date.now,
    });
    return SqlControlStore.open(port);
  }
  if (url.startsWith("postgres://") || url.startsWith("postgresql://")) {
    for (const name of ["synchronous", "busyTimeoutMs", "lockWaitTimeoutMs", "clock"] as const) {
      if (options[name] !== undefined) throw new TopologyError("CONFIG", `${name} applies to the SQLite control store only`);
    }
    const schema = options.schema ?? "mycelium_control";
    if (!/^[a-z_][a-z0-9_]{0,62}$/.test(schema)) throw new TopologyError("CONFIG", `schema must be a plain lower-case identifier, got ${schema}`);
    const sslMode = options.sslMode ?? "prefer";
    if (!["disable", "prefer", "require", "verify-full"].includes(sslMode)) {
      throw new TopologyError("CONFIG", `sslMode must be disable, prefer, require or verify-full, got ${sslMode}`);
    }
    const port = await PostgresPort.open({
      url,
      schema,
      sslMode,
      maxConnections: positiveInteger("maxConnections", options.maxConnections ?? 10),
      connectTimeoutMs: positiveInteger("connectTimeoutMs", options.connectTimeoutMs ?? 10_000),
      idleTimeoutMs: positiveInteger("idleTimeoutMs", options.idleTimeoutMs ?? 300_000),
    });
    return SqlControlStore.open(port);
  }
  throw new TopologyError("CONFIG", `unsupported control store URL ${JSON.stringify(url)}: expected sqlite:<path> or postgres://…`);
}
