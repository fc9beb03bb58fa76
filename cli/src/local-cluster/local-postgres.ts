import { execFile } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { Client } from "pg";

export interface LocalPostgresOptions {
  /** Where the server keeps its data (created on first start, reused afterwards). */
  dir: string;
  /** Directory with initdb, pg_ctl and postgres. @default found on PATH */
  binDir?: string;
  port: number;
  /** @default 128 — at least MYCELIUM_MAX_TRANSACTIONS for the nodes sharing this server */
  maxPreparedTransactions?: number;
}

const superuser = "postgres";

/**
 * A PostgreSQL server for `mycelium up --backend postgres`: initialised once in the cluster's data
 * directory, started and stopped with the cluster, on loopback with trust authentication (it is
 * reachable only from this machine). PostgreSQL refuses to run as root, so as root it runs as the
 * `postgres` user, which must be able to reach the directory.
 */
export class LocalPostgres {
  private readonly asPostgres = process.getuid?.() === 0;

  constructor(readonly options: LocalPostgresOptions) {}

  get dataDir(): string {
    return path.join(this.options.dir, "data");
  }

  url(database: string): string {
    return `postgres://${superuser}@127.0.0.1:${this.options.port}/${encodeURIComponent(database)}`;
  }

  async start(): Promise<void> {
    fs.mkdirSync(this.options.dir, { recursive: true });
    if (this.asPostgres) {
      await this.run("chown", ["-R", `${superuser}:`, this.options.dir], false);
      fs.chmodSync(this.options.dir, 0o700);
      try {
        await this.run("test", ["-w", this.options.dir], true);
      } catch {
        throw new Error(`the postgres user cannot write ${this.options.dir} (a parent directory is closed to it); use a --data-dir it can reach, e.g. under /tmp`);
      }
    }
    if (!fs.existsSync(path.join(this.dataDir, "PG_VERSION"))) {
      await this.run(this.bin("initdb"), ["-D", this.dataDir, "-U", superuser, "-A", "trust", "-E", "UTF8", "--locale=C"], this.asPostgres);
    }
    const config = [
      `port = ${this.options.port}`,
      `listen_addresses = '127.0.0.1'`,
      `unix_socket_directories = '${this.options.dir}'`,
      `max_prepared_transactions = ${this.options.maxPreparedTransactions ?? 128}`,
      `max_connections = 200`,
      `log_min_messages = warning`,
      "",
    ].join("\n");
    const autoConf = path.join(this.dataDir, "postgresql.auto.conf");
    fs.writeFileSync(autoConf, config);
    if (this.asPostgres) await this.run("chown", [`${superuser}:`, autoConf], false);
    await this.run(this.bin("pg_ctl"), ["-w", "-t", "60", "-D", this.dataDir, "-l", path.join(this.options.dir, "server.log"), "start"], this.asPostgres);
  }

  /** Create the database unless it exists; returns its URL. */
  async database(name: string): Promise<string> {
    const client = new Client({ connectionString: this.url("postgres") });
    await client.connect();
    try {
      const exists = await client.query("SELECT 1 FROM pg_database WHERE datname = $1", [name]);
      if (exists.rowCount === 0) await client.query(`CREATE DATABASE "${name.replace(/"/g, '""')}"`);
    } finally {
      await client.end();
    }
    return this.url(name);
  }

  async stop(): Promise<void> {
    if (!fs.existsSync(path.join(this.dataDir, "postmaster.pid"))) return;
    await this.run(this.bin("pg_ctl"), ["-D", this.dataDir, "-m", "fast", "-w", "-t", "60", "stop"], this.asPostgres);
  }

  private bin(name: string): string {
    return this.options.binDir ? path.join(this.options.binDir, name) : name;
  }

  private run(command: string, args: string[], asPostgres: boolean): Promise<void> {
    const [file, argv] = asPostgres ? ["runuser", ["-u", superuser, "--", command, ...args]] : [command, args];
    return new Promise((resolve, reject) => {
      execFile(file, argv, { cwd: os.tmpdir(), timeout: 120_000 }, (error, stdout, stderr) => {
        if (error) reject(new Error(`${[file, ...argv].join(" ")} failed: ${`${stdout}${stderr}`.trim() || error.message}`));
        else resolve();
      });
    });
  }
}
