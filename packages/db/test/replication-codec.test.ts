import { decodeChangeEntry, decodeSnapshotChunk, encodeChangeEntry, encodeSnapshotChunk, rowHash, type ChangeEntry } from "@mycelium/db";

describe("change-entry codec", () => {
  test("every SQL value keeps its exact type and value through the wire text", () => {
    const row = {
      id: 2n ** 63n - 1n,
      small: -(2 ** 53) + 1,
      real: 0.1 + 0.2,
      tiny: 5e-324,
      negativeZero: -0,
      infinite: Number.POSITIVE_INFINITY,
      notANumber: Number.NaN,
      text: "ünï\u0000☃ \"quoted\"",
      empty: "",
      flag: false,
      bytes: new Uint8Array([0, 1, 255]),
      nothing: null,
    };
    const entry: ChangeEntry = {
      lsn: 7,
      txId: "tx-1",
      origin: "node-a",
      originSeq: 3,
      epoch: 2,
      changes: [
        { table: "t", op: "upsert", key: { id: row.id }, row, before: null },
        { table: "t", op: "delete", key: { id: 1 }, before: { id: 1, bytes: new Uint8Array(0) } },
      ],
      committedAtMs: 1_700_000_000_000,
      checksum: "0123456789abcdef0123456789abcdef",
    };
    const decoded = decodeChangeEntry(encodeChangeEntry(entry));
    expect(decoded).toEqual(entry);
    expect(Object.is(decoded.changes[0]!.row!.negativeZero, -0)).toBe(true);
    expect(typeof decoded.changes[0]!.row!.id).toBe("bigint");
    expect(typeof decoded.changes[0]!.row!.small).toBe("number");
    const ddl: ChangeEntry = { ...entry, changes: [], ddl: ["CREATE TABLE x (id INTEGER PRIMARY KEY)"] };
    expect(decodeChangeEntry(encodeChangeEntry(ddl))).toEqual(ddl);
  });

  test("snapshot chunks round-trip", () => {
    const chunk = { kind: "rows" as const, table: "t", columns: ["a", "b"], rows: [[1n << 60n, new Uint8Array([9])], [null, "x"]] };
    expect(decodeSnapshotChunk(encodeSnapshotChunk(chunk))).toEqual(chunk);
  });

  test("row hashes ignore column order, name case and NULL columns, and tell types apart", () => {
    expect(rowHash("T", { a: 1, B: "x", c: null })).toBe(rowHash("t", { b: "x", A: 1 }));
    expect(rowHash("t", { a: 1 })).toBe(rowHash("t", { a: 1n }));
    expect(rowHash("t", { a: true })).toBe(rowHash("t", { a: 1 }));
    expect(rowHash("t", { a: 1 })).not.toBe(rowHash("t", { a: "1" }));
    expect(rowHash("t", { a: 1.5 })).not.toBe(rowHash("t", { a: "1.5" }));
    expect(rowHash("t", { a: new Uint8Array([1]) })).not.toBe(rowHash("t", { a: "\u0001" }));
    expect(rowHash("t", { a: 1 })).not.toBe(rowHash("u", { a: 1 }));
  });
});
