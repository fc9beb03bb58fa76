import { coordinator } from "@mycelium/proto";
import { parseGrant } from "../src/commands/grant-syntax";
import { migrationStatements, orderMigrationFiles, parseMigrationFileName } from "../src/commands/migration-files";

describe("migration file names", () => {
  test.each([
    ["001_create_users.sql", { id: "001_create_users", number: 1, name: "create_users" }],
    ["42_add-email.v2.sql", { id: "42_add-email.v2", number: 42, name: "add-email.v2" }],
    ["create_users.sql", null],
    ["001-create.sql", null],
    ["001_create.txt", null],
    ["001_.sql", null],
  ])("%s", (name, expected) => {
    expect(parseMigrationFileName(name)).toEqual(expected);
  });
});

describe("migration file contents", () => {
  test("statements split at ; outside quotes and comments; the last one needs no ;", () => {
    expect(
      migrationStatements(`-- users get an email
ALTER TABLE users ADD COLUMN email TEXT DEFAULT 'a;b';
/* an index ; */ CREATE INDEX users_email ON users (email)
-- trailing comment
`),
    ).toEqual(["-- users get an email\nALTER TABLE users ADD COLUMN email TEXT DEFAULT 'a;b'", "/* an index ; */ CREATE INDEX users_email ON users (email)\n-- trailing comment"]);
  });

  test("comments alone are not statements", () => {
    expect(migrationStatements("-- nothing here;\n/* nor; here */;\n")).toEqual([]);
  });
});

describe("orderMigrationFiles", () => {
  const entry = (fileName: string, text = "CREATE TABLE t (id INTEGER PRIMARY KEY)") => ({ fileName, text });

  test("by number (not by name), other files ignored", () => {
    const files = orderMigrationFiles([entry("10_c.sql"), entry("002_b.sql"), entry("README.md"), entry("1_a.sql")]);
    expect(files.map((f) => f.id)).toEqual(["1_a", "002_b", "10_c"]);
  });

  test("every problem at once: bad names, empty files, repeated numbers", () => {
    expect(() => orderMigrationFiles([entry("create.sql"), entry("001_a.sql", "-- empty"), entry("002_b.sql"), entry("2_c.sql")])).toThrow(
      /create\.sql: a migration file is named <number>_<name>\.sql[\s\S]*001_a\.sql: no statements[\s\S]*002_b and 2_c have the same number/,
    );
  });
});

describe("grant syntax", () => {
  const P = coordinator.Privilege;
  test.each([
    [["SELECT", "ON", "users", "TO", "alice"], "grant", { kind: "privileges", privileges: [P.PRIVILEGE_SELECT], table: "users", grantee: "alice" }],
    [["select,insert", "on", "*", "to", "writers"], "grant", { kind: "privileges", privileges: [P.PRIVILEGE_SELECT, P.PRIVILEGE_INSERT], table: "*", grantee: "writers" }],
    [["SELECT,", "UPDATE", "ON", "orders", "TO", "bob"], "grant", { kind: "privileges", privileges: [P.PRIVILEGE_SELECT, P.PRIVILEGE_UPDATE], table: "orders", grantee: "bob" }],
    [["ALL", "ON", "orders", "TO", "bob"], "grant", { kind: "privileges", privileges: [P.PRIVILEGE_SELECT, P.PRIVILEGE_INSERT, P.PRIVILEGE_UPDATE, P.PRIVILEGE_DELETE, P.PRIVILEGE_DDL], table: "orders", grantee: "bob" }],
    [["ROLE", "readers", "TO", "alice"], "grant", { kind: "role", role: "readers", grantee: "alice" }],
    [["DELETE", "ON", "users", "FROM", "alice"], "revoke", { kind: "privileges", privileges: [P.PRIVILEGE_DELETE], table: "users", grantee: "alice" }],
    [["role", "readers", "from", "alice"], "revoke", { kind: "role", role: "readers", grantee: "alice" }],
  ] as const)("%j", (words, verb, expected) => {
    expect(parseGrant(words, verb)).toEqual(expected);
  });

  test.each([[["SELECT", "users", "TO", "alice"]], [["DROP", "ON", "users", "TO", "alice"]], [["SELECT", "ON", "users"]]])("refuses %j", (words) => {
    expect(() => parseGrant(words, "grant")).toThrow();
  });
});
