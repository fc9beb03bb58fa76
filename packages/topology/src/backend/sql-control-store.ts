import type { Kysely } from "kysely";
import type {
  CommitOp,
  CommitResult,
  ControlStore,
  Decision,
  DecisionInput,
  DecisionLog,
  DecisionRecord,
  KvEntry,
  KvValue,
  Lease,
  RecordDecisionResult,
} from "../control-store";
import { TopologyError } from "../topology-error";
import type { Port } from "./ports";
import { type ControlTables, createTables } from "./schema";

// Bounds (TigerBeetle style): every request is limited so one caller cannot make a transaction unbounded.
export const limits = {
  maxKeyLength: 1024,
  maxValueBytes: 8 * 1024 * 1024,
  maxOpsPerCommit: 1024,
  maxDecisionsPerBatch: 4096,
  maxParticipantsPerDecision: 1024,
  maxLeaseTtlMs: 24 * 60 * 60 * 1000,
  /** Rows per multi-row INSERT / IN list (well below SQLite's 32766 bound variables). */
  rowsPerStatement: 500,
} as const;

const textEncoder = new TextEncoder();
const textDecoder = new TextDecoder();

function chunks<T>(items: readonly T[], size: number): T[][] {
  const out: T[][] = [];
  for (let index = 0; index < items.length; index += size) out.push(items.slice(index, index + size));
  return out;
}

function assertKey(key: unknown): asserts key is string {
  if (typeof key !== "string" || key.length === 0 || key.length > limits.maxKeyLength || key.includes("\u0000")) {
    throw new TopologyError("INVALID_ARGUMENT", `invalid key ${JSON.stringify(key)}: 1-${limits.maxKeyLength} characters, no NUL`);
  }
}

function assertVersion(version: unknown, key: string): void {
  if (version !== undefined && (!Number.isSafeInteger(version) || (version as number) < 0)) {
    throw new TopologyError("INVALID_ARGUMENT", `expectedVersion of ${key} must be an integer >= 0, got ${String(version)}`);
  }
}

function assertName(what: string, value: unknown, maxLength = 256): asserts value is string {
  if (typeof value !== "string" || value.length === 0 || value.length > maxLength) {
    throw new TopologyError("INVALID_ARGUMENT", `${what} must be a string of 1-${maxLength} characters, got ${JSON.stringify(value)}`);
  }
}

function encodeValue(value: KvValue): { bytes: Uint8Array; isText: boolean } {
  if (typeof value === "string") return { bytes: textEncoder.encode(value), isText: true };
  if (value instanceof Uint8Array) return { bytes: value, isText: false };
  throw new TopologyError("INVALID_ARGUMENT", "a value is a string or a Uint8Array");
}

function decodeEntry(row: { key: string; value: Uint8Array; is_text: number | boolean; version: number }): KvEntry {
  const bytes = new Uint8Array(row.value.buffer, row.value.byteOffset, row.value.byteLength);
  return {
    key: row.key,
    value: row.is_text === true || row.is_text === 1 ? textDecoder.decode(bytes) : bytes,
    version: Number(row.version),
  };
}

/** The smallest string greater than every string that starts with `prefix` (UTF-8 / code-point order). */
export function prefixUpperBound(prefix: string): string | null {
  const codePoints = Array.from(prefix, (char) => char.codePointAt(0)!);
  while (codePoints.length > 0) {
    const last = codePoints.pop()!;
    if (last < 0x10ffff) {
      const next = last + 1 === 0xd800 ? 0xe000 : last + 1;
      return String.fromCodePoint(...codePoints, next);
    }
  }
  return null;
}

/** The control store over a Port: one implementation of the semantics for every backend. */
export class SqlControlStore implements ControlStore {
  readonly decisions: DecisionLog;
  private closed = false;

  private constructor(private readonly port: Port) {
    this.decisions = new SqlDecisionLog(port, () => this.assertOpen());
  }

  get kind(): "sqlite" | "postgres" {
    return this.port.dialect;
  }

  static async open(port: Port): Promise<SqlControlStore> {
    try {
      await port.write("create control-store tables", async (db) => {
        if (port.dialect === "postgres") {
          // Two processes creating a new store at once would race on the catalog; take turns.
          await db.selectNoFrom((eb) => eb.fn("pg_advisory_xact_lock", [eb.fn("hashtext", [eb.val("mycelium_control_tables")])]).as("locked")).execute();
        }
        await createTables(db, port.dialect);
      });
    } catch (error) {
      await port.close();
      throw error;
    }
    return new SqlControlStore(port);
  }

  private assertOpen(): void {
    if (this.closed) throw new TopologyError("CLOSED", "the control store is closed");
  }

  // ---- key-value ---------------------------------------------------------------------------------------------

  async get(key: string): Promise<KvEntry | null> {
    this.assertOpen();
    assertKey(key);
    const row = await this.port.read(`get ${key}`, (db) => db.selectFrom("kv").selectAll().where("key", "=", key).executeTakeFirst());
    return row ? decodeEntry(row) : null;
  }

  async list(prefix: string, limit = 100_000): Promise<KvEntry[]> {
    this.assertOpen();
    if (typeof prefix !== "string") throw new TopologyError("INVALID_ARGUMENT", "prefix must be a string");
    if (!Number.isSafeInteger(limit) || limit < 1) throw new TopologyError("INVALID_ARGUMENT", "limit must be a positive integer");
    const upper = prefixUpperBound(prefix);
    const rows = await this.port.read(`list ${prefix}`, (db) =>
      db
        .selectFrom("kv")
        .selectAll()
        .where("key", ">=", prefix)
        .$if(upper !== null, (query) => query.where("key", "<", upper!))
        .orderBy("key")
        .limit(limit)
        .execute(),
    );
    return rows.map(decodeEntry);
  }

  async revision(): Promise<number> {
    this.assertOpen();
    const row = await this.port.read("revision", (db) => db.selectFrom("control_meta").select("revision").where("id", "=", 1).executeTakeFirstOrThrow());
    return Number(row.revision);
  }

  async commit(ops: readonly CommitOp[]): Promise<CommitResult> {
    this.assertOpen();
    if (!Array.isArray(ops) || ops.length === 0 || ops.length > limits.maxOpsPerCommit) {
      throw new TopologyError("INVALID_ARGUMENT", `a commit has 1-${limits.maxOpsPerCommit} operations`);
    }
    const seen = new Set<string>();
    const encoded = new Map<string, { bytes: Uint8Array; isText: boolean }>();
    for (const op of ops) {
      assertKey(op.key);
      if (seen.has(op.key)) throw new TopologyError("INVALID_ARGUMENT", `key ${op.key} appears twice in one commit`);
      seen.add(op.key);
      if (op.kind !== "put" && op.kind !== "delete" && op.kind !== "check") {
        throw new TopologyError("INVALID_ARGUMENT", `unknown operation ${String((op as { kind?: unknown }).kind)}`);
      }
      if (op.kind === "check" && op.expectedVersion === undefined) {
        throw new TopologyError("INVALID_ARGUMENT", `check of ${op.key} needs an expectedVersion`);
      }
      assertVersion(op.expectedVersion, op.key);
      if (op.kind === "put") {
        const value = encodeValue(op.value);
        if (value.bytes.byteLength > limits.maxValueBytes) {
          throw new TopologyError("INVALID_ARGUMENT", `value of ${op.key} is ${value.bytes.byteLength} bytes; the limit is ${limits.maxValueBytes}`);
        }
        encoded.set(op.key, value);
      }
    }
    const keys = [...seen];

    return this.port.write("commit", async (db) => {
      // Lock the revision row first: every key-value writer (any process, any backend) goes through it, so
      // conditions are checked and writes applied with no other writer in between.
      const meta = await db
        .selectFrom("control_meta")
        .select("revision")
        .where("id", "=", 1)
        .$if(this.port.dialect === "postgres", (query) => query.forUpdate())
        .executeTakeFirstOrThrow();
      const current = new Map<string, number>();
      for (const chunk of chunks(keys, limits.rowsPerStatement)) {
        const rows = await db.selectFrom("kv").select(["key", "version"]).where("key", "in", chunk).execute();
        for (const row of rows) current.set(row.key, Number(row.version));
      }
      for (const op of ops) {
        if (op.expectedVersion === undefined) continue;
        const actual = current.get(op.key) ?? 0;
        if (actual !== op.expectedVersion) return { ok: false as const, conflictKey: op.key, actualVersion: actual };
      }
      const writes = ops.filter((op) => op.kind !== "check");
      const revision = Number(meta.revision) + (writes.length > 0 ? 1 : 0);
      const versions: Record<string, number> = {};
      if (writes.length === 0) return { ok: true as const, revision, versions };

      const puts = writes.filter((op) => op.kind === "put");
      for (const chunk of chunks(puts, limits.rowsPerStatement)) {
        await db
          .insertInto("kv")
          .values(
            chunk.map((op) => {
              const value = encoded.get(op.key)!;
              return {
                key: op.key,
                value: value.bytes,
                is_text: this.port.dialect === "postgres" ? value.isText : value.isText ? 1 : 0,
                version: revision,
              };
            }),
          )
          .onConflict((conflict) =>
            conflict.column("key").doUpdateSet((eb) => ({
              value: eb.ref("excluded.value"),
              is_text: eb.ref("excluded.is_text"),
              version: eb.ref("excluded.version"),
            })),
          )
          .execute();
        for (const op of chunk) versions[op.key] = revision;
      }
      const deletes = writes.filter((op) => op.kind === "delete").map((op) => op.key);
      for (const chunk of chunks(deletes, limits.rowsPerStatement)) {
        await db.deleteFrom("kv").where("key", "in", chunk).execute();
      }
      await db.updateTable("control_meta").set({ revision }).where("id", "=", 1).execute();
      return { ok: true as const, revision, versions };
    });
  }

  // ---- leases ------------------------------------------------------------------------------------------------

  async acquireLease(name: string, holder: string, ttlMs: number): Promise<Lease> {
    this.assertOpen();
    assertName("lease name", name);
    assertName("lease holder", holder);
    if (!Number.isSafeInteger(ttlMs) || ttlMs < 1 || ttlMs > limits.maxLeaseTtlMs) {
      throw new TopologyError("INVALID_ARGUMENT", `ttlMs must be an integer in 1..${limits.maxLeaseTtlMs}, got ${ttlMs}`);
    }
    return this.port.write(`acquire lease ${name}`, async (db) => {
      const now = await this.port.nowMs(db);
      const taken = await db
        .insertInto("leases")
        .values({ name, holder, expires_at_ms: now + ttlMs, token: 1 })
        .onConflict((conflict) =>
          conflict
            .column("name")
            .doUpdateSet((eb) => ({
              holder: eb.ref("excluded.holder"),
              expires_at_ms: eb.ref("excluded.expires_at_ms"),
              token: eb
                .case()
                .when("leases.holder", "=", eb.ref("excluded.holder"))
                .then(eb.ref("leases.token"))
                .else(eb("leases.token", "+", 1))
                .end(),
            }))
            // Only a free (expired) lease or our own may be overwritten.
            .where((eb) => eb.or([eb("leases.holder", "=", eb.ref("excluded.holder")), eb("leases.expires_at_ms", "<=", now)])),
        )
        .returning(["holder", "expires_at_ms", "token"])
        .executeTakeFirst();
      if (taken) return { acquired: true, holder, expiresAtMs: Number(taken.expires_at_ms), token: Number(taken.token) };
      const current = await db.selectFrom("leases").selectAll().where("name", "=", name).executeTakeFirstOrThrow();
      return { acquired: false, holder: current.holder, expiresAtMs: Number(current.expires_at_ms), token: Number(current.token) };
    });
  }

  async releaseLease(name: string, holder: string): Promise<void> {
    this.assertOpen();
    assertName("lease name", name);
    assertName("lease holder", holder);
    // Expire rather than delete: the row keeps the fencing token, so the next holder's token is still higher.
    await this.port.write(`release lease ${name}`, (db) =>
      db.updateTable("leases").set({ expires_at_ms: 0 }).where("name", "=", name).where("holder", "=", holder).execute(),
    );
  }

  async getLease(name: string): Promise<Omit<Lease, "acquired"> | null> {
    this.assertOpen();
    assertName("lease name", name);
    return this.port.read(`get lease ${name}`, async (db) => {
      const now = await this.port.nowMs(db);
      const row = await db.selectFrom("leases").selectAll().where("name", "=", name).executeTakeFirst();
      if (!row || Number(row.expires_at_ms) <= now) return null;
      return { holder: row.holder, expiresAtMs: Number(row.expires_at_ms), token: Number(row.token) };
    });
  }

  async nowMs(): Promise<number> {
    this.assertOpen();
    return this.port.read("clock", (db) => this.port.nowMs(db));
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.port.close();
  }
}

function assertDecisionInput(input: DecisionInput): void {
  assertName("txId", input?.txId);
  if (input.decision !== "commit" && input.decision !== "abort") {
    throw new TopologyError("INVALID_ARGUMENT", `decision of ${input.txId} must be "commit" or "abort", got ${String(input.decision)}`);
  }
  assertName("coordinatorId", input.coordinatorId);
  if (!Number.isSafeInteger(input.atMs) || input.atMs < 0) {
    throw new TopologyError("INVALID_ARGUMENT", `atMs of ${input.txId} must be a non-negative integer`);
  }
  if (!Array.isArray(input.participants) || input.participants.length > limits.maxParticipantsPerDecision) {
    throw new TopologyError("INVALID_ARGUMENT", `participants of ${input.txId}: an array of at most ${limits.maxParticipantsPerDecision}`);
  }
  for (const participant of input.participants) {
    assertName("participant shardId", participant?.shardId);
    assertName("participant nodeId", participant.nodeId);
    if (!Number.isSafeInteger(participant.epoch) || participant.epoch < 0) {
      throw new TopologyError("INVALID_ARGUMENT", `participant ${participant.shardId} of ${input.txId}: epoch must be an integer >= 0`);
    }
  }
}

/**
 * The decision log in its own two tables rather than the key-value map: recording a decision is an insert
 * (no read of the global revision row, so coordinators do not queue behind each other or behind metadata
 * writes), acknowledgements are single-row updates, and "what is undone" is an index scan.
 */
class SqlDecisionLog implements DecisionLog {
  constructor(
    private readonly port: Port,
    private readonly assertOpen: () => void,
  ) {}

  async recordDecisions(batch: readonly DecisionInput[]): Promise<RecordDecisionResult[]> {
    this.assertOpen();
    if (!Array.isArray(batch) || batch.length > limits.maxDecisionsPerBatch) {
      throw new TopologyError("INVALID_ARGUMENT", `a decision batch holds at most ${limits.maxDecisionsPerBatch} decisions`);
    }
    if (batch.length === 0) return [];
    batch.forEach(assertDecisionInput);
    // One entry per transaction, in txId order so concurrent batches lock rows in the same order (no deadlock).
    const unique = new Map<string, DecisionInput>();
    for (const input of batch) if (!unique.has(input.txId)) unique.set(input.txId, input);
    const ordered = [...unique.values()].sort((a, b) => (a.txId < b.txId ? -1 : a.txId > b.txId ? 1 : 0));

    const stored = await this.port.write("record decisions", async (db) => {
      const inserted = new Set<string>();
      for (const chunk of chunks(ordered, limits.rowsPerStatement)) {
        const rows = await db
          .insertInto("decisions")
          .values(
            chunk.map((input) => ({
              tx_id: input.txId,
              decision: input.decision,
              coordinator_id: input.coordinatorId,
              decided_at_ms: input.atMs,
              completed_at_ms: input.participants.length === 0 ? input.atMs : null,
            })),
          )
          .onConflict((conflict) => conflict.column("tx_id").doNothing())
          .returning("tx_id")
          .execute();
        for (const row of rows) inserted.add(row.tx_id);
      }
      const participants = ordered
        .filter((input) => inserted.has(input.txId))
        .flatMap((input) =>
          input.participants.map((participant) => ({
            tx_id: input.txId,
            shard_id: participant.shardId,
            node_id: participant.nodeId,
            epoch: participant.epoch,
            done_at_ms: null,
          })),
        );
      for (const chunk of chunks(participants, limits.rowsPerStatement)) {
        await db.insertInto("decision_participants").values(chunk).execute();
      }
      const existing = new Map<string, Decision>();
      const others = ordered.filter((input) => !inserted.has(input.txId)).map((input) => input.txId);
      for (const chunk of chunks(others, limits.rowsPerStatement)) {
        const rows = await db.selectFrom("decisions").select(["tx_id", "decision"]).where("tx_id", "in", chunk).execute();
        for (const row of rows) existing.set(row.tx_id, row.decision as Decision);
      }
      return existing;
    });

    return batch.map((input) => {
      const first = unique.get(input.txId)!;
      const standing = stored.get(input.txId) ?? first.decision;
      return standing === input.decision ? { txId: input.txId, ok: true as const } : { txId: input.txId, ok: false as const, existing: standing };
    });
  }

  async getDecision(txId: string): Promise<DecisionRecord | null> {
    this.assertOpen();
    assertName("txId", txId);
    const records = await this.port.read(`get decision ${txId}`, async (db) => {
      const rows = await db.selectFrom("decisions").selectAll().where("tx_id", "=", txId).execute();
      return this.withParticipants(db, rows);
    });
    return records[0] ?? null;
  }

  private async withParticipants(db: Kysely<ControlTables>, rows: Array<ControlTables["decisions"]>): Promise<DecisionRecord[]> {
    const participants = new Map<string, DecisionRecord["participants"]>();
    for (const chunk of chunks(rows.map((row) => row.tx_id), limits.rowsPerStatement)) {
      const found = await db.selectFrom("decision_participants").selectAll().where("tx_id", "in", chunk).orderBy("tx_id").orderBy("shard_id").execute();
      for (const row of found) {
        const list = participants.get(row.tx_id) ?? [];
        list.push({ shardId: row.shard_id, nodeId: row.node_id, epoch: Number(row.epoch), done: row.done_at_ms !== null });
        participants.set(row.tx_id, list);
      }
    }
    return rows.map((row) => ({
      txId: row.tx_id,
      decision: row.decision as Decision,
      coordinatorId: row.coordinator_id,
      decidedAtMs: Number(row.decided_at_ms),
      completedAtMs: row.completed_at_ms === null ? null : Number(row.completed_at_ms),
      participants: participants.get(row.tx_id) ?? [],
    }));
  }

  markParticipantDone(txId: string, shardId: string, atMs?: number): Promise<void> {
    return this.markParticipantsDone([{ txId, shardId }], atMs);
  }

  async markParticipantsDone(done: ReadonlyArray<{ txId: string; shardId: string }>, atMs = Date.now()): Promise<void> {
    this.assertOpen();
    if (!Array.isArray(done) || done.length > limits.maxDecisionsPerBatch * 4) {
      throw new TopologyError("INVALID_ARGUMENT", "too many acknowledgements in one call");
    }
    if (done.length === 0) return;
    for (const item of done) {
      assertName("txId", item?.txId);
      assertName("shardId", item.shardId);
    }
    const txIds = [...new Set(done.map((item) => item.txId))].sort();
    await this.port.write("mark participants done", async (db) => {
      if (this.port.dialect === "postgres") {
        // Lock the decisions first (in order): two acknowledgements of one transaction arriving together must
        // not both miss each other's update and leave the decision incomplete forever.
        for (const chunk of chunks(txIds, limits.rowsPerStatement)) {
          await db.selectFrom("decisions").select("tx_id").where("tx_id", "in", chunk).orderBy("tx_id").forUpdate().execute();
        }
      }
      for (const item of done) {
        await db
          .updateTable("decision_participants")
          .set({ done_at_ms: atMs })
          .where("tx_id", "=", item.txId)
          .where("shard_id", "=", item.shardId)
          .where("done_at_ms", "is", null)
          .execute();
      }
      for (const chunk of chunks(txIds, limits.rowsPerStatement)) {
        await db
          .updateTable("decisions")
          .set({ completed_at_ms: atMs })
          .where("tx_id", "in", chunk)
          .where("completed_at_ms", "is", null)
          .where((eb) =>
            eb.not(
              eb.exists(
                eb
                  .selectFrom("decision_participants")
                  .select("decision_participants.tx_id")
                  .whereRef("decision_participants.tx_id", "=", "decisions.tx_id")
                  .where("decision_participants.done_at_ms", "is", null),
              ),
            ),
          )
          .execute();
      }
    });
  }

  async listUndone(limit = 1000): Promise<DecisionRecord[]> {
    this.assertOpen();
    if (!Number.isSafeInteger(limit) || limit < 1) throw new TopologyError("INVALID_ARGUMENT", "limit must be a positive integer");
    return this.port.read("list undone decisions", async (db) => {
      const rows = await db
        .selectFrom("decisions")
        .selectAll()
        .where("completed_at_ms", "is", null)
        .orderBy("decided_at_ms")
        .orderBy("tx_id")
        .limit(limit)
        .execute();
      return this.withParticipants(db, rows);
    });
  }

  async pruneCompleted(completedBeforeMs: number, limit = 10_000): Promise<number> {
    this.assertOpen();
    if (!Number.isSafeInteger(completedBeforeMs)) throw new TopologyError("INVALID_ARGUMENT", "completedBeforeMs must be an integer");
    if (!Number.isSafeInteger(limit) || limit < 1) throw new TopologyError("INVALID_ARGUMENT", "limit must be a positive integer");
    return this.port.write("prune decisions", async (db) => {
      const rows = await db
        .selectFrom("decisions")
        .select("tx_id")
        .where("completed_at_ms", "is not", null)
        .where("completed_at_ms", "<", completedBeforeMs)
        .orderBy("completed_at_ms")
        .limit(limit)
        .execute();
      const txIds = rows.map((row) => row.tx_id);
      for (const chunk of chunks(txIds, limits.rowsPerStatement)) {
        await db.deleteFrom("decision_participants").where("tx_id", "in", chunk).execute();
        await db.deleteFrom("decisions").where("tx_id", "in", chunk).execute();
      }
      return txIds.length;
    });
  }
}
