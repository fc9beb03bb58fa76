import * as readline from "node:readline";
import type { Command } from "commander";
import { isMyceliumError, type MyceliumClient, type QueryResult, type Transaction } from "@mycelium/client";
import { renderTable, toJson } from "../output/format";
import { connect, withConnectionFlags } from "./connect";
import { splitStatements } from "./split-statements";

interface SqlOptions {
  execute?: string[];
  json?: boolean;
  transaction?: boolean;
  dataDir?: string;
}

export function registerSql(program: Command): void {
  withConnectionFlags(
    program
      .command("sql")
      .description("run SQL: -e statements, or an interactive shell")
      .option("-e, --execute <sql>", "statement to run (repeatable; each is its own transaction unless --transaction)", collect, [])
      .option("--transaction", "run all -e statements in one transaction")
      .option("--json", "print each result as one line of JSON"),
  ).action(async (options: SqlOptions) => {
    const client = connect(options, "client");
    try {
      if (options.execute && options.execute.length > 0) {
        process.exitCode = (await runStatements(client, options.execute, options)) ? 0 : 1;
      } else {
        await shell(client, options);
      }
    } finally {
      client.close();
    }
  });
}

function collect(value: string, previous: string[]): string[] {
  return [...previous, value];
}

async function runStatements(client: MyceliumClient, texts: string[], options: SqlOptions): Promise<boolean> {
  const statements = texts.flatMap((text) => {
    const { statements: complete, rest } = splitStatements(text);
    return rest.trim() ? [...complete, rest.trim()] : complete;
  });
  if (options.transaction) {
    try {
      const { results } = await client.executeTransaction(statements.map((sql) => ({ sql })));
      for (const result of results) print(result, options);
      return true;
    } catch (error) {
      printError(error);
      return false;
    }
  }
  for (const sql of statements) {
    try {
      print(await client.execute(sql), options);
    } catch (error) {
      printError(error);
      return false;
    }
  }
  return true;
}

function print(result: QueryResult, options: { json?: boolean }): void {
  if (options.json) {
    process.stdout.write(toJson({ columns: result.columns, rows: result.rows, rowsAffected: result.rowsAffected }) + "\n");
  } else if (result.columns.length > 0) {
    process.stdout.write(renderTable(result.columns, result.rows) + "\n");
  } else {
    process.stdout.write(`OK, ${result.rowsAffected} row${result.rowsAffected === 1 ? "" : "s"} affected\n`);
  }
}

export function printError(error: unknown): void {
  if (isMyceliumError(error)) {
    process.stderr.write(`ERROR ${error.code}${error.reason ? ` (${error.reason})` : ""}: ${error.message}\n`);
  } else {
    process.stderr.write(`ERROR: ${error instanceof Error ? error.message : String(error)}\n`);
  }
}

const help = `Statements end with ;. BEGIN, COMMIT and ROLLBACK group statements into one distributed transaction.
  \\explain <sql>   how a statement is routed
  \\q               quit`;

async function shell(client: MyceliumClient, options: SqlOptions): Promise<void> {
  const input = readline.createInterface({ input: process.stdin, output: process.stdout, terminal: process.stdin.isTTY });
  let buffer = "";
  let tx: Transaction | null = null;
  const prompt = () => {
    input.setPrompt(buffer.trim() ? "       ...> " : tx ? "mycelium*> " : "mycelium> ");
    input.prompt();
  };
  if (process.stdin.isTTY) process.stdout.write(`Connected. Type \\help for help.\n`);
  prompt();
  for await (const line of input) {
    const trimmed = line.trim();
    if (!buffer.trim() && trimmed.startsWith("\\")) {
      const [command = "", ...rest] = trimmed.split(/\s+/);
      if (command === "\\q" || command === "\\quit") break;
      if (command === "\\help" || command === "\\?") process.stdout.write(help + "\n");
      else if (command === "\\explain") {
        try {
          const plan = await client.explain(rest.join(" "));
          process.stdout.write(plan.notes.join("\n") + "\n" + plan.targets.map((t) => `  ${t.shard?.shardId} (epoch ${t.shard?.epoch}) on ${t.primaryNodeId} @ ${t.primaryAddress}: ${t.statement?.sql}`).join("\n") + "\n");
        } catch (error) {
          printError(error);
        }
      } else process.stdout.write(`unknown command ${command}; try \\help\n`);
      prompt();
      continue;
    }
    buffer += line + "\n";
    const { statements, rest } = splitStatements(buffer);
    buffer = rest;
    for (const sql of statements) {
      const keyword = sql.trim().toUpperCase().replace(/\s+/g, " ");
      try {
        if (keyword === "BEGIN" || keyword === "BEGIN TRANSACTION" || keyword === "START TRANSACTION") {
          if (tx) throw new Error("a transaction is already open; COMMIT or ROLLBACK it first");
          tx = await client.begin();
          process.stdout.write(`BEGIN ${tx.id}\n`);
        } else if (keyword === "COMMIT" || keyword === "END") {
          if (!tx) throw new Error("no transaction is open");
          const current = tx;
          tx = null;
          await current.commit();
          process.stdout.write("COMMIT\n");
        } else if (keyword === "ROLLBACK") {
          if (!tx) throw new Error("no transaction is open");
          const current = tx;
          tx = null;
          await current.rollback();
          process.stdout.write("ROLLBACK\n");
        } else {
          print(tx ? await tx.execute(sql) : await client.execute(sql), options);
        }
      } catch (error) {
        printError(error);
        if (tx && isMyceliumError(error)) {
          process.stdout.write("the transaction was rolled back\n");
          tx = null;
        }
      }
    }
    prompt();
  }
  if (tx) await tx.rollback().catch(() => undefined);
  input.close();
}
