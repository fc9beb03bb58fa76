import { createHash } from "node:crypto";
import type { PoolClient } from "pg";
import { DbError } from "../db-error";
import { addChecksum, checksumModulus, rowHashOf, subtractChecksum } from "../replication/checksum";
import { approximateSize } from "../replication/codec";
import type { CaptureEvent } from "../replication/collapse";
import type { Row } from "../replication/types";
import { ddlOnlyCreates } from "../replication/validate";
import { normalizeInteger, type SqlValue } from "../sql-value";
import { toDbError } from "./postgres-errors";

// Change capture on PostgreSQL. Each user table gets a row trigger whose plpgsql function (generated per table
// from the catalog, so each column is encoded by its type) appends the old and new row images to the UNLOGGED
// buffer `_myc_capture`, tagged with the transaction id. Before COMMIT (or PREPARE) the store drains its own
// transaction's rows, builds the entry in JS (collapse, checksum delta) and calls `_myc_publish` in the same
// transaction:
//
// - When the shard's `_myc_replica` row is free, the entry is logged inline: the row lock (held to COMMIT)
//   assigns the next lsn and originSeq. A lone writer pays one statement.
// - When another transaction holds it (contention), the entry is staged in `_myc_staged` instead and the
//   transaction commits without waiting, so concurrent commits still share WAL flushes; the store then runs a
//   coalesced publish that moves every committed staged entry into the log in one transaction, and the write
//   returns once its entry has its lsn.
// - A prepared transaction cannot hold the row lock until the coordinator decides, so it always stages (in
//   `_myc_pending`); commitPrepared publishes right after COMMIT PREPARED.
//
// Staged entries are logged in staging order (one sequence for both tables). That is commit order for any two
// transactions that touched a common row: the later one could lock the row only after the earlier committed,
// and each stages after its last row lock. Transactions with no common row commute (also for the checksum,
// which is a sum). Fencing: setShardEpoch locks the row, then holds SHARE on `_myc_staged`; a stager inserts
// first and reads the epoch after, so either it committed before the epoch was raised or it sees the new one.
//
// Values are encoded in SQL as tagged text exactly as the read path types them (postgres-types.ts):
// i<int2/int4/int8/oid>, r<float4/float8 text>, o1/o0 (bool), b<bytea hex>, t<anything else as text>.

export const captureSetting = "myc.replaying";

export interface PgCapturedTable {
  name: string;
  columns: string[];
  /** Per column: i, r, o, b or t (see above). */
  categories: string[];
  keyColumns: string[];
}

function quoteIdentifier(name: string): string {
  return `"${name.replace(/"/g, '""')}"`;
}

/** A SQL string literal, safe whatever standard_conforming_strings says (E'' whenever there is a backslash). */
export function sqlLiteral(value: string | null): string {
  if (value === null) return "NULL";
  return quoteLiteral(value);
}

function quoteLiteral(value: string): string {
  return value.includes("\\") ? `E'${value.replace(/\\/g, "\\\\").replace(/'/g, "''")}'` : `'${value.replace(/'/g, "''")}'`;
}

function category(typeOid: number): string {
  switch (typeOid) {
    case 20:
    case 21:
    case 23:
    case 26:
      return "i";
    case 700:
    case 701:
      return "r";
    case 16:
      return "o";
    case 17:
      return "b";
    default:
      return "t";
  }
}

/** Internal objects of a shard schema beyond `_myc_txn`/`_myc_meta` (idempotent). */
export function replicationObjectsSql(schema: string): string[] {
  const s = quoteIdentifier(schema);
  return [
    `CREATE TABLE IF NOT EXISTS ${s}._myc_replica (id int PRIMARY KEY CHECK (id = 1), head_lsn bigint NOT NULL, epoch bigint NOT NULL,
       checksum numeric(39, 0) NOT NULL, truncated_lsn bigint NOT NULL)`,
    `INSERT INTO ${s}._myc_replica VALUES (1, 0, 0, 0, 0) ON CONFLICT (id) DO NOTHING`,
    `CREATE TABLE IF NOT EXISTS ${s}._myc_vv (origin text PRIMARY KEY, seq bigint NOT NULL)`,
    `CREATE TABLE IF NOT EXISTS ${s}._myc_changes (lsn bigint PRIMARY KEY, tx_id text, origin text NOT NULL, origin_seq bigint NOT NULL,
       epoch bigint NOT NULL, committed_at_ms bigint NOT NULL, changes text NOT NULL, ddl text, checksum numeric(39, 0) NOT NULL)`,
    `CREATE UNLOGGED TABLE IF NOT EXISTS ${s}._myc_capture (seq bigserial, xid bigint NOT NULL, tbl text NOT NULL,
       old_row text, new_row text)`,
    `CREATE INDEX IF NOT EXISTS _myc_capture_xid ON ${s}._myc_capture (xid)`,
    `CREATE SEQUENCE IF NOT EXISTS ${s}._myc_stage_seq`,
    `CREATE TABLE IF NOT EXISTS ${s}._myc_pending (seq bigint PRIMARY KEY DEFAULT nextval('${s}._myc_stage_seq'), tx_id text,
       origin text NOT NULL, delta numeric(39, 0) NOT NULL, changes text NOT NULL, ddl text, staged_at_ms bigint NOT NULL)`,
    `CREATE TABLE IF NOT EXISTS ${s}._myc_staged (seq bigint PRIMARY KEY DEFAULT nextval('${s}._myc_stage_seq'), tx_id text,
       origin text NOT NULL, delta numeric(39, 0) NOT NULL, changes text NOT NULL, ddl text, staged_at_ms bigint NOT NULL)`,
    `CREATE TABLE IF NOT EXISTS ${s}._myc_schema_log (seq bigint PRIMARY KEY, ddl text NOT NULL)`,
    publishFunctionSql(s),
  ];
}

/**
 * `_myc_publish(…, p_mode)`: 'write' logs the caller's entry inline or stages it (returns a NULL lsn when
 * staged); 'prepare' stages a 2PC participant's entry; 'publish' moves committed staged entries into the log
 * (no lock taken when there are none);
 * 'barrier' takes the row lock and SHARE on `_myc_staged` whatever there is, and publishes (snapshots).
 */
function publishFunctionSql(s: string): string {
  return `CREATE OR REPLACE FUNCTION ${s}._myc_publish(p_tx_id text, p_origin text, p_epoch_min bigint, p_delta numeric,
      p_changes text, p_ddl text, p_now bigint, p_mode text)
    RETURNS TABLE (out_lsn bigint, out_epoch bigint, out_checksum text)
    LANGUAGE plpgsql AS $myc_publish$
    DECLARE
      st record;
      r record;
      v_lsn bigint;
      v_ck numeric;
      v_seq bigint;
      v_epoch bigint;
      m constant numeric := ${checksumModulus.toString()};
    BEGIN
      IF p_mode = 'prepare' THEN
        -- A 2PC participant's entry, staged until COMMIT PREPARED (the caller re-checks the epoch after PREPARE).
        SELECT x.epoch INTO v_epoch FROM ${s}._myc_replica x WHERE x.id = 1;
        IF p_epoch_min IS NOT NULL AND p_epoch_min < v_epoch THEN
          RAISE EXCEPTION 'the shard is at epoch %, a write under epoch % is refused', v_epoch, p_epoch_min USING ERRCODE = 'MYC01';
        END IF;
        INSERT INTO ${s}._myc_pending (tx_id, origin, delta, changes, ddl, staged_at_ms) VALUES (p_tx_id, p_origin, p_delta, p_changes, p_ddl, p_now);
        RETURN QUERY SELECT NULL::bigint, v_epoch, NULL::text;
        RETURN;
      ELSIF p_mode = 'write' THEN
        SELECT x.head_lsn, x.epoch, x.checksum INTO st FROM ${s}._myc_replica x WHERE x.id = 1 FOR UPDATE SKIP LOCKED;
        IF NOT FOUND THEN
          INSERT INTO ${s}._myc_staged (tx_id, origin, delta, changes, ddl, staged_at_ms)
            VALUES (p_tx_id, p_origin, p_delta, p_changes, p_ddl, p_now);
          SELECT x.epoch INTO v_epoch FROM ${s}._myc_replica x WHERE x.id = 1;
          IF p_epoch_min IS NOT NULL AND p_epoch_min < v_epoch THEN
            RAISE EXCEPTION 'the shard is at epoch %, a write under epoch % is refused', v_epoch, p_epoch_min USING ERRCODE = 'MYC01';
          END IF;
          RETURN QUERY SELECT NULL::bigint, v_epoch, NULL::text;
          RETURN;
        END IF;
      ELSE
        IF p_mode = 'publish' AND NOT EXISTS (SELECT 1 FROM ${s}._myc_pending) AND NOT EXISTS (SELECT 1 FROM ${s}._myc_staged) THEN
          RETURN QUERY SELECT x.head_lsn, x.epoch, x.checksum::text FROM ${s}._myc_replica x WHERE x.id = 1;
          RETURN;
        END IF;
        SELECT x.head_lsn, x.epoch, x.checksum INTO st FROM ${s}._myc_replica x WHERE x.id = 1 FOR UPDATE;
        IF p_mode = 'barrier' THEN
          LOCK TABLE ${s}._myc_staged IN SHARE MODE;
        END IF;
      END IF;
      IF p_epoch_min IS NOT NULL AND p_epoch_min < st.epoch THEN
        RAISE EXCEPTION 'the shard is at epoch %, a write under epoch % is refused', st.epoch, p_epoch_min USING ERRCODE = 'MYC01';
      END IF;
      v_lsn := st.head_lsn;
      v_ck := st.checksum;
      FOR r IN
        WITH d AS (DELETE FROM ${s}._myc_pending RETURNING *), e AS (DELETE FROM ${s}._myc_staged RETURNING *)
        SELECT * FROM (SELECT * FROM d UNION ALL SELECT * FROM e) u ORDER BY u.seq
      LOOP
        v_lsn := v_lsn + 1;
        INSERT INTO ${s}._myc_vv AS v (origin, seq) VALUES (r.origin, 1)
          ON CONFLICT (origin) DO UPDATE SET seq = v.seq + 1 RETURNING v.seq INTO v_seq;
        v_ck := mod(v_ck + r.delta, m);
        INSERT INTO ${s}._myc_changes (lsn, tx_id, origin, origin_seq, epoch, committed_at_ms, changes, ddl, checksum)
          VALUES (v_lsn, r.tx_id, r.origin, v_seq, st.epoch, p_now, r.changes, r.ddl, v_ck);
      END LOOP;
      IF p_changes IS NOT NULL THEN
        v_lsn := v_lsn + 1;
        INSERT INTO ${s}._myc_vv AS v (origin, seq) VALUES (p_origin, 1)
          ON CONFLICT (origin) DO UPDATE SET seq = v.seq + 1 RETURNING v.seq INTO v_seq;
        v_ck := mod(v_ck + p_delta, m);
        INSERT INTO ${s}._myc_changes (lsn, tx_id, origin, origin_seq, epoch, committed_at_ms, changes, ddl, checksum)
          VALUES (v_lsn, p_tx_id, p_origin, v_seq, st.epoch, p_now, p_changes, p_ddl, v_ck);
      END IF;
      IF v_lsn <> st.head_lsn THEN
        UPDATE ${s}._myc_replica x SET head_lsn = v_lsn, checksum = v_ck WHERE x.id = 1;
      END IF;
      RETURN QUERY SELECT v_lsn, st.epoch, v_ck::text;
    END $myc_publish$`;
}

/** Every user table of the schema (not `_myc_*`, not partitions) with typed columns and primary key. */
export async function readUserTables(client: PoolClient, schema: string): Promise<PgCapturedTable[]> {
  const result = await client.query<{ table_name: string; column_name: string; type_oid: number; key_position: number | null }>(
    `SELECT c.relname AS table_name, a.attname AS column_name,
            (CASE WHEN t.typtype = 'd' THEN t.typbasetype ELSE a.atttypid END)::int AS type_oid,
            array_position(i.indkey::int2[], a.attnum) AS key_position
       FROM pg_class c
       JOIN pg_namespace n ON n.oid = c.relnamespace
       JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped AND a.attgenerated = ''
       JOIN pg_type t ON t.oid = a.atttypid
       LEFT JOIN pg_index i ON i.indrelid = c.oid AND i.indisprimary
      WHERE n.nspname = $1 AND c.relkind IN ('r', 'p') AND NOT c.relispartition AND c.relname NOT LIKE '\\_myc\\_%'
      ORDER BY c.relname, a.attnum`,
    [schema],
  );
  const tables = new Map<string, PgCapturedTable & { keys: Array<[number, string]> }>();
  for (const row of result.rows) {
    let table = tables.get(row.table_name);
    if (!table) {
      table = { name: row.table_name, columns: [], categories: [], keyColumns: [], keys: [] };
      tables.set(row.table_name, table);
    }
    table.columns.push(row.column_name);
    table.categories.push(category(Number(row.type_oid)));
    if (row.key_position !== null) table.keys.push([Number(row.key_position), row.column_name]);
  }
  return [...tables.values()].map(({ keys, ...table }) => ({ ...table, keyColumns: keys.sort((a, b) => a[0] - b[0]).map(([, name]) => name) }));
}

function captureFunctionName(table: string): string {
  return `_myc_cap_${createHash("sha256").update(table).digest("hex").slice(0, 20)}`;
}

function encodedColumn(prefix: "NEW" | "OLD", column: string, kind: string): string {
  const ref = `${prefix}.${quoteIdentifier(column)}`;
  switch (kind) {
    case "o":
      return `CASE WHEN ${ref} THEN 'o1' WHEN NOT ${ref} THEN 'o0' END`;
    case "b":
      return `'b' || encode(${ref}, 'hex')`;
    default:
      return `'${kind}' || ${ref}::text`;
  }
}

export async function dropCapture(client: PoolClient, schema: string): Promise<void> {
  const functions = await client.query<{ proname: string }>(
    `SELECT p.proname FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
      WHERE n.nspname = $1 AND p.proname LIKE '\\_myc\\_cap\\_%'`,
    [schema],
  );
  for (const { proname } of functions.rows) {
    await client.query(`DROP FUNCTION ${quoteIdentifier(schema)}.${quoteIdentifier(proname)}() CASCADE`);
  }
}

export async function installCapture(client: PoolClient, schema: string, tables: readonly PgCapturedTable[]): Promise<void> {
  const s = quoteIdentifier(schema);
  for (const table of tables) {
    const fn = `${s}.${quoteIdentifier(captureFunctionName(table.name))}`;
    const image = (prefix: "NEW" | "OLD") =>
      `array_to_json(ARRAY[${table.columns.map((column, index) => encodedColumn(prefix, column, table.categories[index]!)).join(", ")}]::text[])::text`;
    const name = quoteLiteral(table.name);
    await client.query(`CREATE OR REPLACE FUNCTION ${fn}() RETURNS trigger LANGUAGE plpgsql AS $myc_capture$
      BEGIN
        IF current_setting('${captureSetting}', true) = 'on' THEN RETURN NULL; END IF;
        IF TG_OP = 'INSERT' THEN
          INSERT INTO ${s}._myc_capture (xid, tbl, new_row) VALUES (txid_current(), ${name}, ${image("NEW")});
        ELSIF TG_OP = 'UPDATE' THEN
          INSERT INTO ${s}._myc_capture (xid, tbl, old_row, new_row) VALUES (txid_current(), ${name}, ${image("OLD")}, ${image("NEW")});
        ELSE
          INSERT INTO ${s}._myc_capture (xid, tbl, old_row) VALUES (txid_current(), ${name}, ${image("OLD")});
        END IF;
        RETURN NULL;
      END $myc_capture$`);
    await client.query(
      `CREATE TRIGGER _myc_capture AFTER INSERT OR UPDATE OR DELETE ON ${s}.${quoteIdentifier(table.name)} FOR EACH ROW EXECUTE FUNCTION ${fn}()`,
    );
  }
}

function decodeTagged(text: string | null): SqlValue {
  if (text === null) return null;
  const body = text.slice(1);
  switch (text[0]) {
    case "i":
      return normalizeInteger(BigInt(body));
    case "r":
      return Number.parseFloat(body);
    case "o":
      return body === "1";
    case "b":
      return new Uint8Array(Buffer.from(body, "hex"));
    case "t":
      return body;
    default:
      throw new DbError("INTERNAL", `unknown capture tag in ${JSON.stringify(text.slice(0, 8))}`);
  }
}

function decodeImage(table: PgCapturedTable, text: string | null): Row | null {
  if (text === null) return null;
  const values = JSON.parse(text) as Array<string | null>;
  if (values.length !== table.columns.length) {
    throw new DbError("INTERNAL", `captured row of ${table.name} has ${values.length} values, the table ${table.columns.length} columns`);
  }
  const row: Row = {};
  table.columns.forEach((column, index) => (row[column] = decodeTagged(values[index]!)));
  return row;
}

/** Takes this transaction's captured rows out of the buffer, in capture order. */
export async function drainCapture(client: PoolClient, tables: (name: string) => Promise<PgCapturedTable>): Promise<CaptureEvent[]> {
  const result = await client.query<{ tbl: string; old_row: string | null; new_row: string | null }>(
    // (txid_current_if_assigned: a transaction that wrote nothing has no id, and must not be given one)
    `WITH d AS (DELETE FROM _myc_capture WHERE xid = txid_current_if_assigned() RETURNING seq, tbl, old_row, new_row)
     SELECT tbl, old_row, new_row FROM d ORDER BY seq`,
  );
  const events: CaptureEvent[] = [];
  for (const row of result.rows) {
    const table = await tables(row.tbl);
    events.push({ table: row.tbl, old: decodeImage(table, row.old_row), new: decodeImage(table, row.new_row) });
  }
  return events;
}

/** A row-hash sum over every user table, reading with a cursor (bounded memory) on `client`'s transaction. */
export async function scanTables(
  client: PoolClient,
  tables: readonly PgCapturedTable[],
  onRows?: (table: PgCapturedTable, rows: SqlValue[][]) => Promise<void> | void,
  batchRows = 2000,
): Promise<bigint> {
  let sum = 0n;
  for (const table of tables) {
    const cursor = `myc_scan`;
    await client.query(
      `DECLARE ${cursor} NO SCROLL CURSOR FOR SELECT ${table.columns.map(quoteIdentifier).join(", ")} FROM ${quoteIdentifier(table.name)}`,
    );
    try {
      for (;;) {
        const result = await client.query({ text: `FETCH ${batchRows} FROM ${cursor}`, rowMode: "array" } as never);
        const rows = (result as unknown as { rows: SqlValue[][] }).rows;
        for (const values of rows) sum += rowHashOf(table.name, table.columns, values);
        if (onRows && rows.length > 0) await onRows(table, rows);
        if (rows.length < batchRows) break;
      }
    } finally {
      await client.query(`CLOSE ${cursor}`);
    }
  }
  return sum % checksumModulus;
}

/**
 * Runs schema statements with capture dropped around them and reinstalled on the resulting tables. Unless the
 * statements only create, every user table is locked (ACCESS EXCLUSIVE) and hashed before and after, so the
 * checksum moves by exactly what the statements did to existing rows; with the tables locked, no transaction
 * can change rows in between (a committed-but-unpublished 2PC entry's delta is relative to the rows it saw,
 * which are those we hash "before", so the two deltas add up in any order).
 */
export async function runSchemaChange(
  client: PoolClient,
  schema: string,
  ddl: readonly string[],
  capture: boolean,
  /** Names statement n (1-based) in errors, e.g. "schema statement 2 on shard users-0001". */
  context: (statementNumber: number) => string,
): Promise<{ tables: PgCapturedTable[]; delta: bigint }> {
  const rescan = capture && !ddlOnlyCreates(ddl);
  let before = 0n;
  if (rescan) {
    const existing = await readUserTables(client, schema);
    if (existing.length > 0) {
      await client.query(`LOCK TABLE ${existing.map((table) => quoteIdentifier(table.name)).join(", ")} IN ACCESS EXCLUSIVE MODE`);
      before = await scanTables(client, existing);
    }
  }
  await dropCapture(client, schema);
  for (const [index, statement] of ddl.entries()) {
    try {
      // Extended protocol: exactly one statement per element.
      await client.query({ text: statement, values: [], queryMode: "extended" } as never);
    } catch (error) {
      throw toDbError(error, context(index + 1));
    }
  }
  const tables = await readUserTables(client, schema);
  if (capture) {
    for (const table of tables) {
      if (table.keyColumns.length === 0) {
        throw new DbError("INVALID_ARGUMENT", `table ${table.name} has no PRIMARY KEY: replicated tables need a PRIMARY KEY`);
      }
    }
    await installCapture(client, schema, tables);
  }
  const after = rescan ? await scanTables(client, tables) : 0n;
  return { tables, delta: subtractChecksum(after, before) };
}

export async function appendSchemaLog(client: PoolClient, ddl: readonly string[]): Promise<void> {
  if (ddl.length === 0) return;
  await client.query(
    `INSERT INTO _myc_schema_log (seq, ddl)
     SELECT (SELECT coalesce(max(seq), 0) FROM _myc_schema_log) + o, d FROM unnest($1::text[]) WITH ORDINALITY AS u(d, o)`,
    [[...ddl]],
  );
}

/** Decimal numeric text (how PostgreSQL keeps checksums) → bigint. */
export function checksumFromNumeric(text: string | number): bigint {
  return BigInt(String(text));
}

export { addChecksum, approximateSize, quoteIdentifier, quoteLiteral };
