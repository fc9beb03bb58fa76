import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import Database from "better-sqlite3";
import { measure, type Summary } from "./stats";

/** Raw better-sqlite3 inserts, each its own durable transaction (WAL, synchronous=FULL) — what one shard file does alone. */
export async function rawSqliteAutocommit(count: number): Promise<Summary> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "mycelium-bench-sqlite-"));
  const db = new Database(path.join(dir, "raw.db"));
  try {
    db.pragma("journal_mode = WAL");
    db.pragma("synchronous = FULL");
    db.exec("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT NOT NULL)");
    const insert = db.prepare("INSERT INTO t (id, v) VALUES (?, ?)");
    return await measure(count, 1, async (i) => {
      insert.run(i, "value");
    });
  } finally {
    db.close();
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

/** Write 4 KB and fdatasync it: the cost of one durable write on this disk. */
export async function fdatasync4k(count: number): Promise<Summary> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "mycelium-bench-fsync-"));
  const fd = fs.openSync(path.join(dir, "sync"), "w");
  const block = Buffer.alloc(4096, 7);
  try {
    return await measure(count, 1, async (i) => {
      fs.writeSync(fd, block, 0, block.length, (i % 256) * 4096);
      fs.fdatasyncSync(fd);
    });
  } finally {
    fs.closeSync(fd);
    fs.rmSync(dir, { recursive: true, force: true });
  }
}
