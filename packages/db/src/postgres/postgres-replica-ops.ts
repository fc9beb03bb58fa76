import type { PoolClient } from "pg";
import { DbError } from "../db-error";
import { addChecksum, changesDelta, checksumFromHex, checksumModulus, checksumToHex, rowHashOf } from "../replication/checksum";
import { approximateSize, encodeChanges } from "../replication/codec";
import { keyString } from "../replication/collapse";
import type { ChangeEntry, Row, RowChange, SnapshotChunk } from "../replication/types";
import { maxSnapshotBytes, maxSnapshotRows, resolveName } from "../replication/validate";
import type { SqlValue } from "../sql-value";
import { toDbError } from "./postgres-errors";
import {
  appendSchemaLog,
  checksumFromNumeric,
  type PgCapturedTable,
  quoteIdentifier,
  readUserTables,
  runSchemaChange,
  scanTables,
} from "./postgres-replication";
import { toPostgresParam } from "./postgres-types";

// Replication work on a PostgreSQL shard that runs on one connection inside a transaction the store opened
// (search_path = the shard's schema, capture switched off with `myc.replaying`): applying entries, restoring a
// snapshot; and the snapshot/verification reads (REPEATABLE READ, one snapshot).

export interface PgShardContext {
  shardId: string;
  schema: string;
  capture: boolean;
  tables(client: PoolClient): Promise<Map<string, PgCapturedTable>>;
  forgetTables(): void;
}

/** Most parameters one generated statement binds (PostgreSQL's limit is 65535). */
const maxParameters = 30_000;
const maxGroupRows = 1_000;

interface OpGroup {
  table: PgCapturedTable;
  kind: "upsert" | "insert" | "delete";
  columns: string[];
  rows: SqlValue[][];
  keys: Set<string>;
}

function resolveTable(tables: Map<string, PgCapturedTable>, name: string, lsn: number): PgCapturedTable {
  const resolved = resolveName(tables.keys(), name);
  if (resolved === undefined) throw new DbError("NO_SUCH_TABLE", `entry ${lsn} changes table ${name}, which this replica does not have`);
  return tables.get(resolved)!;
}

function resolveRow(table: PgCapturedTable, row: Row, lsn: number): { columns: string[]; values: SqlValue[] } {
  const columns: string[] = [];
  const values: SqlValue[] = [];
  for (const name of Object.keys(row)) {
    const column = resolveName(table.columns, name);
    if (column === undefined) throw new DbError("SYNTAX", `entry ${lsn} sets column ${table.name}.${name}, which this replica does not have`);
    columns.push(column);
    values.push(row[name]!);
  }
  return { columns, values };
}

/** Runs runs of same-shaped row operations as multi-row statements (distinct keys within one statement). */
class GroupedWriter {
  private group: OpGroup | null = null;
  statements = 0;

  constructor(private readonly client: PoolClient) {}

  async add(table: PgCapturedTable, kind: OpGroup["kind"], row: Row, key: Row, lsn: number): Promise<void> {
    const { columns, values } = resolveRow(table, kind === "delete" ? key : row, lsn);
    const id = keyString(table.name, key, table.keyColumns);
    const group = this.group;
    const fits =
      group !== null &&
      group.table === table &&
      group.kind === kind &&
      group.columns.length === columns.length &&
      group.columns.every((column, index) => column === columns[index]) &&
      !group.keys.has(id) &&
      group.rows.length < maxGroupRows &&
      (group.rows.length + 1) * columns.length <= maxParameters;
    if (!fits) {
      await this.flush();
      this.group = { table, kind, columns, rows: [], keys: new Set() };
    }
    this.group!.rows.push(values);
    this.group!.keys.add(id);
  }

  async flush(): Promise<void> {
    const group = this.group;
    this.group = null;
    if (!group || group.rows.length === 0) return;
    const values: unknown[] = [];
    const tuples = group.rows.map((row) => `(${row.map((value) => `$${values.push(toPostgresParam(value))}`).join(", ")})`);
    const table = quoteIdentifier(group.table.name);
    const columns = group.columns.map(quoteIdentifier).join(", ");
    let text: string;
    if (group.kind === "delete") {
      text = `DELETE FROM ${table} WHERE (${columns}) IN (${tuples.join(", ")})`;
    } else {
      text = `INSERT INTO ${table} (${columns}) VALUES ${tuples.join(", ")}`;
      if (group.kind === "upsert") {
        const keys = group.table.keyColumns.map(quoteIdentifier).join(", ");
        const others = group.columns.filter((column) => !group.table.keyColumns.includes(column));
        text +=
          others.length === 0
            ? ` ON CONFLICT (${keys}) DO NOTHING`
            : ` ON CONFLICT (${keys}) DO UPDATE SET ${others.map((column) => `${quoteIdentifier(column)} = EXCLUDED.${quoteIdentifier(column)}`).join(", ")}`;
      }
    }
    this.statements += 1;
    await this.client.query({ text, values });
  }
}

export interface ApplyStart {
  headLsn: number;
  truncatedLsn: number;
  epoch: number;
  checksum: bigint;
}

/** Locks the shard's position row (the same lock publishers take) and reads it. */
export async function lockPosition(client: PoolClient): Promise<ApplyStart> {
  const result = await client.query<{ head_lsn: string; truncated_lsn: string; epoch: string; checksum: string }>(
    "SELECT head_lsn, truncated_lsn, epoch, checksum::text AS checksum FROM _myc_replica WHERE id = 1 FOR UPDATE",
  );
  const row = result.rows[0];
  if (!row) throw new DbError("INTERNAL", "the shard has no _myc_replica row");
  return { headLsn: Number(row.head_lsn), truncatedLsn: Number(row.truncated_lsn), epoch: Number(row.epoch), checksum: checksumFromNumeric(row.checksum) };
}

/**
 * Applies consecutive entries that follow `start.headLsn`. Rows first go in as upserts and deletes in the
 * origin's order; if that trips a constraint (a unique value that moved between rows within the batch: the
 * origin's final rows are consistent, the path between them need not be), the batch is redone as "delete
 * every touched key, then insert the final rows".
 */
export async function applyEntriesPg(client: PoolClient, context: PgShardContext, start: ApplyStart, entries: readonly ChangeEntry[]): Promise<void> {
  await client.query("SAVEPOINT myc_apply");
  try {
    await applyRows(client, context, start, entries, false);
  } catch (error) {
    const mapped = toDbError(error, `apply on shard ${context.shardId}`);
    if (mapped.code !== "CONSTRAINT") throw mapped;
    await client.query("ROLLBACK TO SAVEPOINT myc_apply");
    context.forgetTables();
    await applyRows(client, context, start, entries, true);
  }
  await client.query("RELEASE SAVEPOINT myc_apply");

  const last = entries[entries.length - 1]!;
  let checksum = start.checksum;
  const changeRows: unknown[][] = [[], [], [], [], [], [], [], [], []];
  for (const entry of entries) {
    checksum = checksumFromHex(entry.checksum);
    const fields = [
      entry.lsn,
      entry.txId,
      entry.origin,
      entry.originSeq,
      entry.epoch,
      entry.committedAtMs,
      encodeChanges(entry.changes),
      entry.ddl ? JSON.stringify(entry.ddl) : null,
      checksumFromHex(entry.checksum).toString(),
    ];
    fields.forEach((field, index) => changeRows[index]!.push(field));
  }
  await client.query(
    `INSERT INTO _myc_changes (lsn, tx_id, origin, origin_seq, epoch, committed_at_ms, changes, ddl, checksum)
     SELECT * FROM unnest($1::bigint[], $2::text[], $3::text[], $4::bigint[], $5::bigint[], $6::bigint[], $7::text[], $8::text[], $9::numeric[])`,
    changeRows,
  );
  const markers = entries.filter((entry) => entry.txId !== null);
  if (markers.length > 0) {
    await client.query(
      "INSERT INTO _myc_txn (tx_id, prepared_at_ms) SELECT * FROM unnest($1::text[], $2::bigint[]) ON CONFLICT (tx_id) DO NOTHING",
      [markers.map((entry) => entry.txId), markers.map((entry) => entry.committedAtMs)],
    );
  }
  const vector = new Map<string, number>();
  for (const entry of entries) vector.set(entry.origin, Math.max(vector.get(entry.origin) ?? 0, entry.originSeq));
  await client.query(
    `INSERT INTO _myc_vv AS v (origin, seq) SELECT * FROM unnest($1::text[], $2::bigint[])
     ON CONFLICT (origin) DO UPDATE SET seq = GREATEST(v.seq, EXCLUDED.seq)`,
    [[...vector.keys()], [...vector.values()]],
  );
  await client.query("UPDATE _myc_replica SET head_lsn = $1, checksum = $2::numeric, epoch = GREATEST(epoch, $3::bigint) WHERE id = 1", [
    last.lsn,
    checksum.toString(),
    Math.max(...entries.map((entry) => entry.epoch)),
  ]);
}

async function applyRows(client: PoolClient, context: PgShardContext, start: ApplyStart, entries: readonly ChangeEntry[], fallback: boolean): Promise<void> {
  let tables = new Map(await context.tables(client));
  const writer = new GroupedWriter(client);
  let checksum = start.checksum;
  for (const entry of entries) {
    if (entry.ddl) {
      await writer.flush();
      await appendSchemaLog(client, entry.ddl);
      const result = await runSchemaChange(client, context.schema, entry.ddl, context.capture, (n) => `replicated schema statement ${n} (lsn ${entry.lsn}) on shard ${context.shardId}`);
      context.forgetTables();
      tables = new Map(result.tables.map((table) => [table.name, table]));
      checksum = addChecksum(checksum, result.delta);
    } else {
      const changes: Array<[PgCapturedTable, RowChange]> = entry.changes.map((change) => [resolveTable(tables, change.table, entry.lsn), change]);
      if (!fallback) {
        for (const [table, change] of changes) await writer.add(table, change.op, change.row ?? change.key, change.key, entry.lsn);
      } else {
        for (const [table, change] of [...changes].reverse()) await writer.add(table, "delete", change.key, change.key, entry.lsn);
        await writer.flush();
        for (const [table, change] of changes) if (change.op === "upsert") await writer.add(table, "insert", change.row!, change.key, entry.lsn);
      }
      checksum = addChecksum(checksum, changesDelta(entry.changes));
    }
    const reached = checksumToHex(checksum);
    if (reached !== entry.checksum) {
      throw new DbError("REPLICA_DIVERGED", `shard ${context.shardId}: after entry ${entry.lsn} this replica's checksum is ${reached}, the origin's ${entry.checksum}`);
    }
  }
  await writer.flush();
}

/** Entries at or below the head must be the ones this log holds (when it still holds them). */
export async function assertSameEntries(client: PoolClient, shardId: string, start: ApplyStart, entries: readonly ChangeEntry[]): Promise<void> {
  const held = entries.filter((entry) => entry.lsn > start.truncatedLsn && entry.lsn <= start.headLsn);
  if (held.length === 0) return;
  const result = await client.query<{ lsn: string; origin: string; origin_seq: string }>(
    "SELECT lsn, origin, origin_seq FROM _myc_changes WHERE lsn BETWEEN $1 AND $2",
    [held[0]!.lsn, held[held.length - 1]!.lsn],
  );
  const mine = new Map(result.rows.map((row) => [Number(row.lsn), { origin: row.origin, originSeq: Number(row.origin_seq) }]));
  for (const entry of held) {
    const found = mine.get(entry.lsn);
    if (found && (found.origin !== entry.origin || found.originSeq !== entry.originSeq)) {
      throw new DbError(
        "REPLICA_DIVERGED",
        `shard ${shardId}: lsn ${entry.lsn} here is ${found.origin}#${found.originSeq}, the entry given is ${entry.origin}#${entry.originSeq}`,
      );
    }
  }
}

/**
 * Replaces the schema's contents with a snapshot: the caller dropped and recreated the schema's internal
 * objects in this transaction; here the DDL is replayed, rows and markers inserted and the position set.
 */
export async function restoreSnapshotPg(
  client: PoolClient,
  context: PgShardContext,
  first: Extract<SnapshotChunk, { kind: "begin" }>,
  next: () => Promise<SnapshotChunk | undefined>,
  priorEpoch: number,
): Promise<void> {
  const result = await runSchemaChange(client, context.schema, first.ddl, context.capture, (n) => `restore schema statement ${n} on shard ${context.shardId}`);
  context.forgetTables();
  // The schema statements may write rows too (a migration's bookkeeping); the snapshot's rows are the
  // whole truth, so start every table empty.
  for (const table of result.tables) await client.query(`DELETE FROM ${quoteIdentifier(table.name)}`);
  await appendSchemaLog(client, first.ddl);
  const tables = new Map(result.tables.map((table) => [table.name, table]));
  const writer = new GroupedWriter(client);
  let sum = 0n;
  let rows = 0;
  let markers = 0;
  for (;;) {
    const chunk = await next();
    if (chunk === undefined) throw new DbError("INVALID_ARGUMENT", "the snapshot ended without its end chunk");
    if (chunk.kind === "rows") {
      const table = resolveTable(tables, chunk.table, 0);
      for (const values of chunk.rows) {
        const row: Row = {};
        chunk.columns.forEach((column, index) => (row[column] = values[index]!));
        await writer.add(table, "insert", row, row, 0);
        sum += rowHashOf(chunk.table, chunk.columns, values);
      }
      rows += chunk.rows.length;
    } else if (chunk.kind === "markers") {
      await client.query(
        "INSERT INTO _myc_txn (tx_id, prepared_at_ms) SELECT * FROM unnest($1::text[], $2::bigint[]) ON CONFLICT (tx_id) DO NOTHING",
        [chunk.markers.map((marker) => marker.txId), chunk.markers.map((marker) => marker.preparedAtMs)],
      );
      markers += chunk.markers.length;
    } else if (chunk.kind === "end") {
      if (chunk.rowCount !== rows || chunk.markerCount !== markers) {
        throw new DbError("INVALID_ARGUMENT", `the snapshot promised ${chunk.rowCount} rows and ${chunk.markerCount} markers, it carried ${rows} and ${markers}`);
      }
      break;
    } else {
      throw new DbError("INVALID_ARGUMENT", `unexpected ${chunk.kind} chunk inside a snapshot`);
    }
  }
  await writer.flush();
  const reached = sum % checksumModulus;
  if (context.capture && checksumToHex(reached) !== first.checksum) {
    throw new DbError("REPLICA_DIVERGED", `snapshot of shard ${context.shardId}: its rows add up to checksum ${checksumToHex(reached)}, it claims ${first.checksum}`);
  }
  await client.query("UPDATE _myc_replica SET head_lsn = $1, truncated_lsn = $1, epoch = $2, checksum = $3::numeric WHERE id = 1", [
    first.lsn,
    Math.max(priorEpoch, first.epoch),
    reached.toString(),
  ]);
  const origins = Object.keys(first.versionVector);
  if (origins.length > 0) {
    await client.query("INSERT INTO _myc_vv (origin, seq) SELECT * FROM unnest($1::text[], $2::bigint[])", [origins, origins.map((origin) => first.versionVector[origin]!)]);
  }
}

/** Opens REPEATABLE READ READ ONLY on `client` with the shard's search_path. */
async function beginSnapshot(client: PoolClient, schema: string): Promise<void> {
  await client.query(`BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY; SET LOCAL search_path TO ${quoteIdentifier(schema)}`);
}

/**
 * The shard as chunks from one REPEATABLE READ snapshot. The snapshot must not contain rows of a committed
 * transaction whose entry is still staged (it has no lsn yet, so the snapshot's position would not cover it).
 * So a second connection first holds the log's barrier (the `_myc_replica` row lock and SHARE on
 * `_myc_staged`, having published everything staged) while the snapshot is taken; only a 2PC commit can still
 * slip in between, and then the snapshot is retaken (bounded: BUSY after `attempts`).
 */
export async function* snapshotChunksPg(
  connect: () => Promise<PoolClient>,
  context: PgShardContext,
  beginWriteSql: string,
  barrier: (client: PoolClient) => Promise<void>,
  attempts = 20,
): AsyncGenerator<SnapshotChunk> {
  const client = await connect();
  let broken = false;
  try {
    for (let attempt = 1; ; attempt += 1) {
      const holder = await connect();
      let clean: boolean;
      try {
        await holder.query(beginWriteSql);
        await barrier(holder);
        await beginSnapshot(client, context.schema);
        clean = await noStagedEntries(client);
      } finally {
        await holder.query("COMMIT").catch(() => undefined);
        holder.release();
      }
      if (clean) break;
      await client.query("ROLLBACK");
      if (attempt >= attempts) throw new DbError("BUSY", `shard ${context.shardId}: committed 2PC entries kept arriving; snapshot not taken`);
      await new Promise((resolve) => setTimeout(resolve, Math.min(2 * attempt, 50)));
    }
    const position = await client.query<{ head_lsn: string; epoch: string; checksum: string }>(
      "SELECT head_lsn, epoch, checksum::text AS checksum FROM _myc_replica WHERE id = 1",
    );
    const vector = await client.query<{ origin: string; seq: string }>("SELECT origin, seq FROM _myc_vv ORDER BY origin");
    const ddl = await client.query<{ ddl: string }>("SELECT ddl FROM _myc_schema_log ORDER BY seq");
    const tables = await readUserTables(client, context.schema);
    const row = position.rows[0]!;
    yield {
      kind: "begin",
      formatVersion: 1,
      shardId: context.shardId,
      lsn: Number(row.head_lsn),
      epoch: Number(row.epoch),
      versionVector: Object.fromEntries(vector.rows.map((entry) => [entry.origin, Number(entry.seq)])),
      checksum: checksumToHex(checksumFromNumeric(row.checksum)),
      ddl: ddl.rows.map((entry) => entry.ddl),
      tables: tables.map((table) => ({ name: table.name, columns: table.columns, keyColumns: table.keyColumns })),
    };
    let rowCount = 0;
    for (const table of tables) {
      await client.query(
        `DECLARE myc_snapshot NO SCROLL CURSOR FOR SELECT ${table.columns.map(quoteIdentifier).join(", ")} FROM ${quoteIdentifier(table.name)}`,
      );
      for (;;) {
        const fetched = (await client.query({ text: `FETCH ${maxSnapshotRows} FROM myc_snapshot`, rowMode: "array" } as never)) as unknown as {
          rows: SqlValue[][];
        };
        let first = 0;
        let bytes = 0;
        for (let index = 0; index < fetched.rows.length; index += 1) {
          for (const value of fetched.rows[index]!) bytes += approximateSize(value);
          if (bytes >= maxSnapshotBytes || index === fetched.rows.length - 1) {
            const rows = fetched.rows.slice(first, index + 1);
            rowCount += rows.length;
            yield { kind: "rows", table: table.name, columns: table.columns, rows };
            first = index + 1;
            bytes = 0;
          }
        }
        if (fetched.rows.length < maxSnapshotRows) break;
      }
      await client.query("CLOSE myc_snapshot");
    }
    const markers = await client.query<{ tx_id: string; prepared_at_ms: string }>("SELECT tx_id, prepared_at_ms FROM _myc_txn ORDER BY tx_id");
    for (let index = 0; index < markers.rows.length; index += maxSnapshotRows) {
      yield {
        kind: "markers",
        markers: markers.rows.slice(index, index + maxSnapshotRows).map((marker) => ({ txId: marker.tx_id, preparedAtMs: Number(marker.prepared_at_ms) })),
      };
    }
    yield { kind: "end", rowCount, markerCount: markers.rows.length };
    await client.query("COMMIT");
  } catch (error) {
    throw toDbError(error, `snapshot of shard ${context.shardId}`);
  } finally {
    // (an abandoned iteration leaves the read transaction open; after COMMIT this is a harmless no-op)
    await client.query("ROLLBACK").catch(() => {
      broken = true;
    });
    client.release(broken ? true : undefined);
  }
}

async function noStagedEntries(client: PoolClient): Promise<boolean> {
  const result = await client.query<{ n: string }>("SELECT (SELECT count(*) FROM _myc_pending) + (SELECT count(*) FROM _myc_staged) AS n");
  return Number(result.rows[0]!.n) === 0;
}

/** Stored checksum (plus committed staged deltas) and a full scan, from one REPEATABLE READ snapshot. */
export async function verifyChecksumPg(client: PoolClient, schema: string): Promise<{ lsn: number; incremental: bigint; scanned: bigint }> {
  await beginSnapshot(client, schema);
  try {
    const position = await client.query<{ head_lsn: string; checksum: string; pending: string }>(
      `SELECT head_lsn, checksum::text AS checksum,
              (SELECT coalesce(sum(delta), 0)::text FROM (SELECT delta FROM _myc_pending UNION ALL SELECT delta FROM _myc_staged) d) AS pending
         FROM _myc_replica WHERE id = 1`,
    );
    const row = position.rows[0]!;
    const tables = await readUserTables(client, schema);
    const scanned = await scanTables(client, tables);
    const incremental = (checksumFromNumeric(row.checksum) + checksumFromNumeric(row.pending)) % checksumModulus;
    return { lsn: Number(row.head_lsn), incremental, scanned };
  } finally {
    await client.query("ROLLBACK").catch(() => undefined);
  }
}
