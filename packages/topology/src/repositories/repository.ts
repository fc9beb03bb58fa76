import type { ControlStore, KvValue } from "../control-store";
import { TopologyError } from "../topology-error";

/** How a repository turns its records into stored values. */
export interface Codec<T> {
  encode(value: T): KvValue;
  decode(value: KvValue): T;
}

/** Protobuf messages (ts-proto's `X.encode(msg).finish()` / `X.decode(bytes)`). */
export function protoCodec<T>(message: { encode(value: T): { finish(): Uint8Array }; decode(input: Uint8Array): T }): Codec<T> {
  return {
    encode: (value) => message.encode(value).finish(),
    decode: (value) => {
      if (typeof value === "string") throw new TopologyError("INTERNAL", "expected protobuf bytes, found a string value");
      return message.decode(value);
    },
  };
}

/** Plain JSON records (where no protobuf message exists). */
export function jsonCodec<T>(): Codec<T> {
  return {
    encode: (value) => JSON.stringify(value),
    decode: (value) => JSON.parse(typeof value === "string" ? value : new TextDecoder().decode(value)) as T,
  };
}

export interface Versioned<T> {
  id: string;
  value: T;
  /** Control-store version: pass it back as expectedVersion to compare-and-set. */
  version: number;
}

export type WriteResult = { ok: true; version: number } | { ok: false; actualVersion: number };

/**
 * Typed records of one kind under one key prefix (`<prefix><url-encoded id>`), with compare-and-set writes
 * and a read-modify-write loop. The typed stores (NodeRegistry, ShardMap, …) are thin layers over this.
 */
export class Repository<T> {
  constructor(
    readonly store: ControlStore,
    readonly prefix: string,
    private readonly codec: Codec<T>,
  ) {
    if (!prefix.endsWith("/")) throw new TopologyError("INVALID_ARGUMENT", `repository prefix must end with "/": ${prefix}`);
  }

  key(id: string): string {
    if (typeof id !== "string" || id.length === 0) throw new TopologyError("INVALID_ARGUMENT", `invalid id ${JSON.stringify(id)}`);
    return `${this.prefix}${encodeURIComponent(id)}`;
  }

  encode(value: T): KvValue {
    return this.codec.encode(value);
  }

  async get(id: string): Promise<Versioned<T> | null> {
    const entry = await this.store.get(this.key(id));
    return entry ? { id, value: this.codec.decode(entry.value), version: entry.version } : null;
  }

  async list(): Promise<Array<Versioned<T>>> {
    const entries = await this.store.list(this.prefix);
    return entries.map((entry) => ({
      id: decodeURIComponent(entry.key.slice(this.prefix.length)),
      value: this.codec.decode(entry.value),
      version: entry.version,
    }));
  }

  /** expectedVersion: absent = unconditional, 0 = create only, n = replace version n only. */
  async put(id: string, value: T, expectedVersion?: number): Promise<WriteResult> {
    const key = this.key(id);
    const result = await this.store.commit([
      { kind: "put", key, value: this.codec.encode(value), ...(expectedVersion === undefined ? {} : { expectedVersion }) },
    ]);
    return result.ok ? { ok: true, version: result.versions[key]! } : { ok: false, actualVersion: result.actualVersion };
  }

  async delete(id: string, expectedVersion?: number): Promise<WriteResult> {
    const result = await this.store.commit([
      { kind: "delete", key: this.key(id), ...(expectedVersion === undefined ? {} : { expectedVersion }) },
    ]);
    return result.ok ? { ok: true, version: result.revision } : { ok: false, actualVersion: result.actualVersion };
  }

  /**
   * Read-modify-write with compare-and-set, retried when another writer got in between. `change` returns the
   * new record, `null` to delete it, or `undefined` to leave it alone; it may run more than once.
   */
  async update(
    id: string,
    change: (current: Versioned<T> | null) => T | null | undefined,
    maxAttempts = 16,
  ): Promise<Versioned<T> | null> {
    for (let attempt = 0; attempt < maxAttempts; attempt += 1) {
      const current = await this.get(id);
      const next = change(current);
      if (next === undefined) return current;
      const expectedVersion = current?.version ?? 0;
      if (next === null) {
        if (!current) return null;
        const deleted = await this.delete(id, expectedVersion);
        if (deleted.ok) return null;
        continue;
      }
      const written = await this.put(id, next, expectedVersion);
      if (written.ok) return { id, value: next, version: written.version };
    }
    throw new TopologyError("CONFLICT", `${this.key(id)}: lost ${maxAttempts} compare-and-set attempts in a row`);
  }
}
