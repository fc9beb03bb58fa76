import * as fs from "node:fs";
import * as path from "node:path";
import Database from "better-sqlite3";
import { Kysely, PostgresDialect, sql, SqliteDialect } from "kysely";
import { Pool, types, type PoolConfig } from "pg";
import { TopologyError, toTopologyError } from "../topology-error";
import type { ControlTables } from "./schema";

/**
 * What the shared control-store logic needs from a backend: serialised write transactions, consistent read
 * transactions and a clock. The SQL itself is the same on both backends (Kysely, unqualified table names).
 */
export interface Port {
  readonly dialect: "sqlite" | "postgres";
  /** A write transaction. SQLite: BEGIN IMMEDIATE, so writers of every process on the file take turns. */
  write<T>(context: string, body: (db: Kysely<ControlTables>) => Promise<T>): Promise<T>;
  /** A read transaction: every query in `body` sees one snapshot. */
  read<T>(context: string, body: (db: Kysely<ControlTables>) => Promise<T>): Promise<T>;
  /** The lease clock, read inside a transaction. */
  nowMs(db: Kysely<ControlTables>): Promise<number>;
  close(): Promise<void>;
}

export interface SqlitePortOptions {
  file: string;
  synchronous: "FULL" | "NORMAL";
  busyTimeoutMs: number;
  lockWaitTimeoutMs: number;
  clock: () => number;
}

function isSqliteBusy(error: unknown): boolean {
  const code = (error as { code?: unknown })?.code;
  return typeof code === "string" && (code.startsWith("SQLITE_BUSY") || code.startsWith("SQLITE_LOCKED"));
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * SQLite, shared by several processes on one machine. busy_timeout is short (SQLite's busy handler sleeps on
 * the event loop's thread); when a transaction cannot start because another process is writing, it is retried
 * after an asynchronous, jittered back-off until lockWaitTimeoutMs has passed (then BUSY).
 */
export class SqlitePort implements Port {
  readonly dialect = "sqlite" as const;
  private readonly database: Database.Database;
  private readonly kysely: Kysely<ControlTables>;

  private constructor(private readonly options: SqlitePortOptions, database: Database.Database) {
    this.database = database;
    this.kysely = new Kysely<ControlTables>({ dialect: new SqliteDialect({ database }) });
  }

  static async open(options: SqlitePortOptions): Promise<SqlitePort> {
    let database: Database.Database;
    try {
      fs.mkdirSync(path.dirname(options.file), { recursive: true });
      database = new Database(options.file);
    } catch (error) {
      throw toTopologyError(error, `open control store ${options.file}`);
    }
    const deadline = Date.now() + options.lockWaitTimeoutMs;
    for (let attempt = 1; ; attempt += 1) {
      try {
        database.pragma(`busy_timeout = ${options.busyTimeoutMs}`);
        database.pragma("journal_mode = WAL");
        database.pragma(`synchronous = ${options.synchronous}`);
        database.pragma("foreign_keys = ON");
        break;
      } catch (error) {
        if (!isSqliteBusy(error) || Date.now() > deadline) {
          database.close();
          throw toTopologyError(error, `configure control store ${options.file}`);
        }
        await sleep(backoffMs(attempt));
      }
    }
    return new SqlitePort(options, database);
  }

  write<T>(context: string, body: (db: Kysely<ControlTables>) => Promise<T>): Promise<T> {
    return this.transaction("IMMEDIATE", context, body);
  }

  read<T>(context: string, body: (db: Kysely<ControlTables>) => Promise<T>): Promise<T> {
    return this.transaction("DEFERRED", context, body);
  }

  async nowMs(): Promise<number> {
    return this.options.clock();
  }

  private async transaction<T>(mode: "IMMEDIATE" | "DEFERRED", context: string, body: (db: Kysely<ControlTables>) => Promise<T>): Promise<T> {
    const deadline = Date.now() + this.options.lockWaitTimeoutMs;
    for (let attempt = 1; ; attempt += 1) {
      try {
        // connection() holds Kysely's per-connection mutex, so transactions of this instance take turns.
        return await this.kysely.connection().execute(async (connection) => {
          await sql.raw(`BEGIN ${mode}`).execute(connection);
          try {
            const result = await body(connection);
            await sql.raw("COMMIT").execute(connection);
            return result;
          } catch (error) {
            if (this.database.inTransaction) await sql.raw("ROLLBACK").execute(connection);
            throw error;
          }
        });
      } catch (error) {
        if (!isSqliteBusy(error)) throw toTopologyError(error, context);
        if (Date.now() > deadline) {
          throw new TopologyError("BUSY", `${context}: the control store stayed locked by other writers for ${this.options.lockWaitTimeoutMs} ms`, { cause: error });
        }
        // Another process holds the write lock: wait without blocking the event loop, then start over.
        await sleep(backoffMs(attempt));
      }
    }
  }

  async close(): Promise<void> {
    await this.kysely.destroy();
  }
}

function backoffMs(attempt: number): number {
  return Math.min(2 ** attempt, 50) * (0.5 + Math.random());
}

export type ControlStoreSslMode = "disable" | "prefer" | "require" | "verify-full";

export interface PostgresPortOptions {
  url: string;
  schema: string;
  maxConnections: number;
  connectTimeoutMs: number;
  idleTimeoutMs: number;
  sslMode: ControlStoreSslMode;
}

// int8 columns hold revisions, versions and ms timestamps, all far below 2^53.
const controlTypes = {
  getTypeParser(oid: number, format?: string) {
    if (oid === 20) return (value: string) => Number.parseInt(value, 10);
    return types.getTypeParser(oid, format as "text");
  },
};

/** PostgreSQL, shared by every replica of every service. Tables live in their own schema (search_path). */
export class PostgresPort implements Port {
  readonly dialect = "postgres" as const;

  private constructor(
    private readonly pool: Pool,
    private readonly kysely: Kysely<ControlTables>,
  ) {}

  static async open(options: PostgresPortOptions): Promise<PostgresPort> {
    const url = new URL(options.url);
    const urlSslMode = url.searchParams.get("sslmode");
    if (urlSslMode !== null && urlSslMode !== options.sslMode) {
      throw new TopologyError("CONFIG", `the control store URL says sslmode=${urlSslMode} but the SSL mode option is ${options.sslMode}`);
    }
    url.searchParams.delete("sslmode");
    const choices: Array<PoolConfig["ssl"]> =
      options.sslMode === "disable"
        ? [false]
        : options.sslMode === "prefer"
          ? [{ rejectUnauthorized: false }, false]
          : options.sslMode === "require"
            ? [{ rejectUnauthorized: false }]
            : [{ rejectUnauthorized: true }];
    let lastError: unknown;
    for (const ssl of choices) {
      const pool = new Pool({
        connectionString: url.toString(),
        max: options.maxConnections,
        connectionTimeoutMillis: options.connectTimeoutMs,
        idleTimeoutMillis: options.idleTimeoutMs,
        application_name: "mycelium-control",
        options: `-c search_path=${options.schema}`,
        types: controlTypes,
        ssl,
      });
      pool.on("error", () => {
        // an idle connection died; the pool replaces it
      });
      try {
        const client = await pool.connect();
        try {
          await client.query("BEGIN");
          await client.query("SELECT pg_advisory_xact_lock(hashtext($1))", [`mycelium_control:${options.schema}`]);
          await client.query(`CREATE SCHEMA IF NOT EXISTS "${options.schema}"`);
          await client.query("COMMIT");
        } catch (error) {
          await client.query("ROLLBACK").catch(() => undefined);
          throw error;
        } finally {
          client.release();
        }
        return new PostgresPort(pool, new Kysely<ControlTables>({ dialect: new PostgresDialect({ pool }) }));
      } catch (error) {
        lastError = error;
        await pool.end().catch(() => undefined);
        if (!(options.sslMode === "prefer" && /does not support SSL/i.test(String((error as Error)?.message)))) break;
      }
    }
    throw toTopologyError(lastError, `connect to the PostgreSQL control store at ${url.host}${url.pathname}`);
  }

  async write<T>(context: string, body: (db: Kysely<ControlTables>) => Promise<T>): Promise<T> {
    try {
      return await this.kysely.transaction().execute((trx) => body(trx));
    } catch (error) {
      throw toTopologyError(error, context);
    }
  }

  async read<T>(context: string, body: (db: Kysely<ControlTables>) => Promise<T>): Promise<T> {
    try {
      return await this.kysely
        .transaction()
        .setIsolationLevel("repeatable read")
        .setAccessMode("read only")
        .execute((trx) => body(trx));
    } catch (error) {
      throw toTopologyError(error, context);
    }
  }

  async nowMs(db: Kysely<ControlTables>): Promise<number> {
    const result = await sql<{ now: number }>`SELECT (extract(epoch FROM clock_timestamp()) * 1000)::int8 AS now`.execute(db);
    return Number(result.rows[0]!.now);
  }

  async close(): Promise<void> {
    await this.kysely.destroy();
  }
}
