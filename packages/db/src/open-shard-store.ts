import * as path from "node:path";
import { DbError } from "./db-error";
import { openPostgresShardStore, type PostgresShardStoreSettings } from "./postgres/postgres-shard-store";
import type { PostgresShardStoreOptions, ShardStore, ShardStoreOptions, SqliteShardStoreOptions } from "./shard-store";

/** The options both backends share, validated. */
export interface CommonSettings {
  nodeId: string | undefined;
  changeCapture: boolean;
  maxChangeWaiters: number;
}

function commonWithDefaults(options: ShardStoreOptions): CommonSettings {
  if (options.nodeId !== undefined && (typeof options.nodeId !== "string" || !/^[\x21-\x7e]{1,256}$/.test(options.nodeId))) {
    throw new DbError("CONFIG", `nodeId must be 1-256 printable ASCII characters without spaces, got ${JSON.stringify(options.nodeId)}`);
  }
  if (options.changeCapture !== undefined && typeof options.changeCapture !== "boolean") {
    throw new DbError("CONFIG", `changeCapture must be a boolean, got ${String(options.changeCapture)}`);
  }
  return {
    nodeId: options.nodeId,
    changeCapture: options.changeCapture ?? true,
    maxChangeWaiters: positiveInteger("maxChangeWaiters", options.maxChangeWaiters ?? 10_000),
  };
}
import { openSqliteShardStore, type SqliteShardStoreSettings } from "./sqlite/sqlite-shard-store";

/** Opens the node's shard store. SQLite redoes prepared transactions before this resolves. */
export function openShardStore(options: ShardStoreOptions): Promise<ShardStore> {
  try {
    if (options.kind === "sqlite") return openSqliteShardStore(sqliteWithDefaults(options));
    if (options.kind === "postgres") return openPostgresShardStore(postgresWithDefaults(options));
  } catch (error) {
    return Promise.reject(error);
  }
  return Promise.reject(new DbError("CONFIG", `unknown database kind ${JSON.stringify((options as { kind?: unknown }).kind)}`));
}

function positiveInteger(name: string, value: number, allowZero = false): number {
  if (!Number.isInteger(value) || value < (allowZero ? 0 : 1)) {
    throw new DbError("CONFIG", `${name} must be an integer ${allowZero ? ">= 0" : ">= 1"}, got ${value}`);
  }
  return value;
}

export function sqliteWithDefaults(options: SqliteShardStoreOptions): SqliteShardStoreSettings {
  if (!options.dataDir) throw new DbError("CONFIG", "dataDir is required for the SQLite backend");
  const synchronous = options.synchronous ?? "FULL";
  if (synchronous !== "FULL" && synchronous !== "NORMAL") {
    throw new DbError("CONFIG", `synchronous must be FULL or NORMAL, got ${String(synchronous)}`);
  }
  return {
    dataDir: options.dataDir,
    nodeDatabasePath: options.nodeDatabasePath ?? path.join(options.dataDir, "node.db"),
    synchronous,
    statementCacheSize: positiveInteger("statementCacheSize", options.statementCacheSize ?? 1000, true),
    lockWaitTimeoutMs: positiveInteger("lockWaitTimeoutMs", options.lockWaitTimeoutMs ?? 5000),
    maxLockWaiters: positiveInteger("maxLockWaiters", options.maxLockWaiters ?? 1000),
    maxGroupCommitBatch: positiveInteger("maxGroupCommitBatch", options.maxGroupCommitBatch ?? 256),
    onQuery: options.onQuery,
    ...commonWithDefaults(options),
  };
}

const sslModes = new Set(["disable", "prefer", "require", "verify-ca", "verify-full"]);

export function postgresWithDefaults(options: PostgresShardStoreOptions): PostgresShardStoreSettings {
  if (!options.url) throw new DbError("CONFIG", "url (DATABASE_URL) is required for the PostgreSQL backend");
  try {
    const url = new URL(options.url);
    if (url.protocol !== "postgres:" && url.protocol !== "postgresql:") throw new Error(`protocol ${url.protocol}`);
  } catch (error) {
    throw new DbError("CONFIG", `DATABASE_URL is not a postgres:// URL (${(error as Error).message})`);
  }
  const sslMode = options.sslMode ?? "prefer";
  if (!sslModes.has(sslMode)) {
    throw new DbError("CONFIG", `sslMode must be one of ${[...sslModes].join(", ")}, got ${String(sslMode)}`);
  }
  if (options.sslRootCert !== undefined && sslMode !== "verify-ca" && sslMode !== "verify-full") {
    throw new DbError("CONFIG", `sslRootCert is only used with sslMode verify-ca or verify-full, not ${sslMode}`);
  }
  return {
    url: options.url,
    maxConnections: positiveInteger("maxConnections", options.maxConnections ?? 10),
    idleTimeoutMs: positiveInteger("idleTimeoutMs", options.idleTimeoutMs ?? 300_000),
    connectTimeoutMs: positiveInteger("connectTimeoutMs", options.connectTimeoutMs ?? 10_000),
    sslMode,
    sslRootCert: options.sslRootCert,
    statementCacheSize: positiveInteger("statementCacheSize", options.statementCacheSize ?? 1000, true),
    lockWaitTimeoutMs: positiveInteger("lockWaitTimeoutMs", options.lockWaitTimeoutMs ?? 5000),
    onQuery: options.onQuery,
    ...commonWithDefaults(options),
  };
}
