import * as fs from "node:fs";
import * as path from "node:path";
import { splitStatements } from "./split-statements";

/** One migration file: `<number>_<name>.sql`, holding DDL statements separated by `;`. */
export interface MigrationFile {
  /** The file name without `.sql`, e.g. 002_add_email. */
  id: string;
  number: number;
  name: string;
  path: string;
  statements: string[];
}

const fileNamePattern = /^(\d+)_([A-Za-z0-9_.-]+)\.sql$/;

/** `002_add_email.sql` → { id: "002_add_email", number: 2, name: "add_email" }; null for other names. */
export function parseMigrationFileName(fileName: string): { id: string; number: number; name: string } | null {
  const match = fileNamePattern.exec(fileName);
  if (!match) return null;
  const number = Number(match[1]);
  if (!Number.isSafeInteger(number)) return null;
  return { id: fileName.slice(0, -".sql".length), number, name: match[2]! };
}

/** Whether `text` is nothing but whitespace and SQL comments. */
export function isBlankSql(text: string): boolean {
  return text.replace(/--[^\n]*(\n|$)/g, "").replace(/\/\*[\s\S]*?\*\//g, "").trim() === "";
}

/**
 * A migration file's statements: split at `;` outside quotes and comments (the shell's splitter), a last
 * statement without `;` included, statements of only comments dropped.
 */
export function migrationStatements(text: string): string[] {
  const { statements, rest } = splitStatements(text);
  return [...statements, rest.trim()].filter((statement) => statement && !isBlankSql(statement));
}

/**
 * Migration files in number order. Every `.sql` file in the directory must be named `<number>_<name>.sql`,
 * numbers must be unique, and every file must hold a statement; other files are ignored.
 */
export function orderMigrationFiles(entries: ReadonlyArray<{ fileName: string; text: string; path?: string }>): MigrationFile[] {
  const problems: string[] = [];
  const files: MigrationFile[] = [];
  for (const entry of entries) {
    if (!entry.fileName.endsWith(".sql")) continue;
    const parsed = parseMigrationFileName(entry.fileName);
    if (!parsed) {
      problems.push(`${entry.fileName}: a migration file is named <number>_<name>.sql (e.g. 001_create_users.sql)`);
      continue;
    }
    const statements = migrationStatements(entry.text);
    if (statements.length === 0) problems.push(`${entry.fileName}: no statements`);
    files.push({ ...parsed, path: entry.path ?? entry.fileName, statements });
  }
  files.sort((a, b) => a.number - b.number || (a.id < b.id ? -1 : 1));
  for (let i = 1; i < files.length; i++) {
    if (files[i]!.number === files[i - 1]!.number) problems.push(`${files[i - 1]!.id} and ${files[i]!.id} have the same number`);
  }
  if (problems.length > 0) throw new Error(`bad migration files:\n  ${problems.join("\n  ")}`);
  return files;
}

/** Reads and orders the migration files of a directory. */
export function readMigrationDir(dir: string): MigrationFile[] {
  let names: string[];
  try {
    names = fs.readdirSync(dir);
  } catch (error) {
    throw new Error(`cannot read migration directory ${dir}: ${(error as Error).message}`);
  }
  return orderMigrationFiles(
    names.filter((name) => name.endsWith(".sql")).map((fileName) => {
      const file = path.join(dir, fileName);
      return { fileName, path: file, text: fs.readFileSync(file, "utf8") };
    }),
  );
}
