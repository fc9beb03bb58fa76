import Database from "better-sqlite3";
import type { CompiledQuery } from "kysely";
import { DbError } from "../db-error";
import { type CacheCounters, LruCache } from "../internal/lru-cache";
import { firstKeyword } from "../internal/user-statement";
import { normalizeInteger, type SqlValue, type StatementResult } from "../sql-value";
import { isBusy, toDbError } from "./sqlite-errors";

export interface SqliteConnectionOptions {
  /** Create the file when missing. */
  create: boolean;
  /** PRAGMA synchronous. */
  synchronous: "FULL" | "NORMAL" | "OFF";
  /** Refuse writes on this connection (reader connections). */
  queryOnly: boolean;
  statementCacheSize: number;
  counters: CacheCounters;
}

/** What running one user statement produced, and whether it wrote. */
export interface ExecutedStatement {
  result: StatementResult;
  readonly: boolean;
}

const maxBusyAttempts = 50;

/**
 * One better-sqlite3 connection in WAL mode with an LRU of prepared user statements. busy_timeout is 0: SQLite's
 * busy handler sleeps on the event loop's thread, so a busy file is retried asynchronously instead
 * (`retryBusy`). In this store only the node's own process opens shard files, so that path is for accidents.
 */
export class SqliteConnection {
  readonly db: Database.Database;
  private readonly statements: LruCache<string, Database.Statement>;
  private readonly internalStatements = new Map<string, Database.Statement>();

  constructor(
    readonly file: string,
    private readonly options: SqliteConnectionOptions,
  ) {
    try {
      this.db = new Database(file, { fileMustExist: !options.create });
    } catch (error) {
      throw toDbError(error, `open ${file}`);
    }
    try {
      this.db.pragma("busy_timeout = 0");
      const mode = this.db.pragma("journal_mode = WAL", { simple: true });
      if (String(mode).toLowerCase() !== "wal") {
        throw new DbError("IO", `${file}: could not switch to WAL journal mode (got ${String(mode)})`);
      }
      this.db.pragma(`synchronous = ${options.synchronous}`);
      this.db.pragma("foreign_keys = ON");
      if (options.queryOnly) this.db.pragma("query_only = 1");
    } catch (error) {
      this.db.close();
      throw toDbError(error, `configure ${file}`);
    }
    this.statements = new LruCache(options.statementCacheSize);
  }

  get cacheSize(): number {
    return this.statements.size;
  }

  get inTransaction(): boolean {
    return this.db.inTransaction;
  }

  /** A cached prepared statement for user SQL (integers read as bigint so nothing beyond 2^53 is rounded). */
  private userStatement(sql: string): Database.Statement {
    const cached = this.statements.get(sql);
    if (cached) {
      this.options.counters.hits += 1;
      return cached;
    }
    this.options.counters.misses += 1;
    const statement = this.db.prepare(sql);
    statement.safeIntegers(true);
    if (statement.reader) statement.raw(true);
    this.statements.set(sql, statement);
    return statement;
  }

  /** Runs one user statement. Throws a DbError. */
  execute(sql: string, params: readonly SqlValue[], context: string, mustBeReadOnly = false): ExecutedStatement {
    try {
      const statement = this.userStatement(sql);
      if (mustBeReadOnly && !statement.readonly) {
        throw new DbError("INVALID_ARGUMENT", `${context}: read() takes read-only statements only`);
      }
      const bound = params.map(bindable);
      if (statement.reader) {
        const rows = (statement.all(...bound) as unknown[][]).map((row) => row.map(fromSqlite));
        return {
          readonly: statement.readonly,
          result: {
            columns: statement.columns().map((column) => column.name),
            rows,
            // A write with RETURNING returns one row per affected row.
            rowsAffected: statement.readonly ? 0 : rows.length,
            lastInsertRowid: null,
          },
        };
      }
      const info = statement.run(...bound);
      const keyword = firstKeyword(sql);
      const inserted = info.changes > 0 && (keyword === "INSERT" || keyword === "REPLACE");
      return {
        readonly: statement.readonly,
        result: {
          columns: [],
          rows: [],
          rowsAffected: info.changes,
          lastInsertRowid: inserted ? normalizeInteger(BigInt(info.lastInsertRowid)) : null,
        },
      };
    } catch (error) {
      throw toDbError(error, context);
    }
  }

  /** Runs a single statement of DDL or transaction control, without caching it. */
  run(sql: string, context: string): void {
    try {
      this.db.prepare(sql).run();
    } catch (error) {
      throw toDbError(error, context);
    }
  }

  /** Runs a query compiled by Kysely (internal tables); returns rows as objects. */
  query<Row>(compiled: CompiledQuery<Row>, context: string): Row[] {
    try {
      let statement = this.internalStatements.get(compiled.sql);
      if (!statement) {
        statement = this.db.prepare(compiled.sql);
        this.internalStatements.set(compiled.sql, statement);
      }
      const params = compiled.parameters.map((value) => bindable(value as SqlValue));
      if (statement.reader) return statement.all(...params) as Row[];
      statement.run(...params);
      return [];
    } catch (error) {
      throw toDbError(error, context);
    }
  }

  close(): void {
    this.statements.clear();
    this.internalStatements.clear();
    if (this.db.open) this.db.close();
  }
}

/** Runs `attempt` until it stops failing with SQLITE_BUSY, yielding to the event loop between tries. */
export async function retryBusy<T>(attempt: () => T, deadlineMs: number, context: string): Promise<T> {
  for (let tries = 1; ; tries += 1) {
    try {
      return attempt();
    } catch (error) {
      const busy = isBusy(error) || (error instanceof DbError && error.code === "BUSY");
      if (!busy) throw error;
      if (Date.now() >= deadlineMs || tries >= maxBusyAttempts) {
        throw new DbError("LOCK_TIMEOUT", `${context}: database file stayed busy (${tries} attempts)`, { cause: error });
      }
      await new Promise((resolve) => setTimeout(resolve, Math.min(2 ** tries, 50) + Math.random() * 5));
    }
  }
}

function bindable(value: SqlValue): number | bigint | string | Uint8Array | null {
  if (typeof value === "boolean") return value ? 1 : 0;
  return value;
}

function fromSqlite(value: unknown): SqlValue {
  if (typeof value === "bigint") return normalizeInteger(value);
  return value as SqlValue;
}

/**
 * Runs `work` with each file attached to `connection` (as `visible_0`, `visible_1`, …), detaching them
 * afterwards whatever happens. SQLite resolves a plain table name in the main database first, then in the
 * attached ones in order, so a statement reads the attached shards' tables by their plain names. Attached
 * for one statement only: a shard restored from a snapshot is a new file, and a long-lived attachment would
 * keep reading the old one.
 */
export function withAttached<T>(connection: SqliteConnection, files: readonly string[], work: () => T): T {
  const attached: string[] = [];
  try {
    const present = new Set((connection.db.pragma("database_list") as Array<{ name: string }>).map((row) => row.name));
    files.forEach((file, index) => {
      const alias = `visible_${index}`;
      try {
        if (present.has(alias)) connection.db.prepare(`DETACH DATABASE ${alias}`).run(); // left by a failed detach
        connection.db.prepare(`ATTACH DATABASE ? AS ${alias}`).run(file);
      } catch (error) {
        throw toDbError(error, `make ${file} visible to the statement`);
      }
      attached.push(alias);
    });
    return work();
  } finally {
    for (const alias of attached.reverse()) {
      try {
        connection.db.prepare(`DETACH DATABASE ${alias}`).run();
      } catch {
        // A detach fails only while a statement on it is still running; it was run to completion above.
      }
    }
  }
}
