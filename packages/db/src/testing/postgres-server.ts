import { execFile, spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as net from "node:net";
import * as os from "node:os";
import * as path from "node:path";
import { Client } from "pg";

// A throwaway PostgreSQL server for tests: its own data directory in a temp dir, a free loopback port, trust
// authentication. Test code only — production paths never import this module's functions.

export interface PostgresServerOptions {
  /** `max_prepared_transactions`; 0 reproduces a server that cannot take part in 2PC. @default 64 */
  maxPreparedTransactions?: number;
  /** `max_connections`. @default 100 */
  maxConnections?: number;
  /** Directory holding `initdb`, `pg_ctl` and `postgres`. @default found on PATH */
  binDir?: string;
}

export interface PostgresServer {
  /** URL of the `postgres` database as the `postgres` superuser. */
  readonly url: string;
  readonly host: string;
  readonly port: number;
  readonly dataDir: string;
  /** Creates a database and returns its URL. */
  createDatabase(name: string): Promise<string>;
  /** Stops the server (fast shutdown) and removes its data directory. Idempotent. */
  stop(): Promise<void>;
}

const superuser = "postgres";
const startAttempts = 3;

export async function startPostgresServer(options: PostgresServerOptions = {}): Promise<PostgresServer> {
  const maxPreparedTransactions = options.maxPreparedTransactions ?? 64;
  const maxConnections = options.maxConnections ?? 100;
  const bin = (name: string) => (options.binDir ? path.join(options.binDir, name) : name);
  const runAsPostgres = process.getuid?.() === 0;

  const baseDir = fs.mkdtempSync(path.join(os.tmpdir(), "myc-pg-"));
  const dataDir = path.join(baseDir, "data");
  const logFile = path.join(baseDir, "server.log");
  if (runAsPostgres) {
    // PostgreSQL refuses to run as root; the `postgres` user must own everything it touches.
    await run("chown", [`${superuser}:`, baseDir], false);
    fs.chmodSync(baseDir, 0o700);
  }
  const cleanupDir = () => fs.rmSync(baseDir, { recursive: true, force: true });

  try {
    await run(bin("initdb"), ["-D", dataDir, "-U", superuser, "-A", "trust", "-E", "UTF8", "--no-sync", "--locale=C"],
      runAsPostgres);
  } catch (error) {
    cleanupDir();
    throw new Error(`PostgreSQL test server: initdb failed: ${(error as Error).message}`);
  }

  let lastError: Error | undefined;
  for (let attempt = 1; attempt <= startAttempts; attempt += 1) {
    const port = await freeLoopbackPort();
    fs.writeFileSync(
      path.join(dataDir, "postgresql.auto.conf"),
      [
        `port = ${port}`,
        `listen_addresses = '127.0.0.1'`,
        `unix_socket_directories = '${baseDir}'`,
        `max_prepared_transactions = ${maxPreparedTransactions}`,
        `max_connections = ${maxConnections}`,
        `fsync = on`,
        `shared_buffers = '32MB'`,
        `dynamic_shared_memory_type = posix`,
        `log_min_messages = warning`,
        "",
      ].join("\n"),
    );
    if (runAsPostgres) await run("chown", [`${superuser}:`, path.join(dataDir, "postgresql.auto.conf")], false);
    try {
      await run(bin("pg_ctl"), ["-w", "-t", "60", "-D", dataDir, "-l", logFile, "start"], runAsPostgres);
    } catch (error) {
      lastError = new Error(`${(error as Error).message}\n--- server log ---\n${tail(logFile)}`);
      continue; // most likely the port was taken between probing and binding
    }
    return makeServer(dataDir, baseDir, port, runAsPostgres, bin, cleanupDir);
  }
  cleanupDir();
  throw new Error(`PostgreSQL test server did not start after ${startAttempts} attempts: ${lastError?.message}`);
}

function makeServer(
  dataDir: string,
  baseDir: string,
  port: number,
  runAsPostgres: boolean,
  bin: (name: string) => string,
  cleanupDir: () => void,
): PostgresServer {
  const host = "127.0.0.1";
  const urlFor = (database: string) => `postgres://${superuser}@${host}:${port}/${encodeURIComponent(database)}`;
  let stopped = false;

  // If the test process dies without calling stop(), do not leave a server running.
  const onExit = () => {
    if (stopped) return;
    const args = ["-D", dataDir, "-m", "immediate", "-w", "stop"];
    if (runAsPostgres) spawnSync("runuser", ["-u", superuser, "--", bin("pg_ctl"), ...args], { stdio: "ignore" });
    else spawnSync(bin("pg_ctl"), args, { stdio: "ignore" });
    cleanupDir();
  };
  process.once("exit", onExit);

  return {
    url: urlFor("postgres"),
    host,
    port,
    dataDir,
    async createDatabase(name: string): Promise<string> {
      if (!/^[A-Za-z_][A-Za-z0-9_]{0,62}$/.test(name)) throw new Error(`invalid database name ${JSON.stringify(name)}`);
      const client = new Client({ connectionString: urlFor("postgres") });
      await client.connect();
      try {
        await client.query(`CREATE DATABASE "${name}"`);
      } finally {
        await client.end();
      }
      return urlFor(name);
    },
    async stop(): Promise<void> {
      if (stopped) return;
      stopped = true;
      process.removeListener("exit", onExit);
      try {
        await run(bin("pg_ctl"), ["-D", dataDir, "-m", "fast", "-w", "-t", "60", "stop"], runAsPostgres);
      } finally {
        cleanupDir();
      }
    },
  };
}

function run(command: string, args: string[], asPostgres: boolean): Promise<void> {
  const [file, argv] = asPostgres ? ["runuser", ["-u", superuser, "--", command, ...args]] : [command, args];
  return new Promise((resolve, reject) => {
    // cwd: a directory the postgres user can enter, so tools that stat the cwd do not complain.
    execFile(file, argv, { cwd: os.tmpdir(), timeout: 120_000 }, (error, stdout, stderr) => {
      if (error) reject(new Error(`${[file, ...argv].join(" ")}: ${error.message}\n${stdout}${stderr}`.trim()));
      else resolve();
    });
  });
}

function freeLoopbackPort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      const port = typeof address === "object" && address ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

function tail(file: string): string {
  try {
    return fs.readFileSync(file, "utf8").split("\n").slice(-30).join("\n");
  } catch {
    return "(no server log)";
  }
}
