import { router } from "@mycelium/proto";
import { GrantIndex, requiredPrivileges, type RequiredPrivilege } from "../src/core/privileges";

const K = router.StatementKind;
const plan = (fields: Partial<router.RoutePlan>) => router.RoutePlan.create(fields);
const req = (...pairs: Array<[string, RequiredPrivilege["privilege"]]>) => pairs.map(([table, privilege]) => ({ table, privilege }));

describe("requiredPrivileges: from the plan's kind and tables", () => {
  test.each([
    ["SELECT of one table", plan({ kind: K.STATEMENT_KIND_SELECT, tables: ["users"], readTables: ["users"] }), req(["users", "SELECT"])],
    ["join reading two tables", plan({ kind: K.STATEMENT_KIND_SELECT, tables: ["users", "orders"], readTables: ["users", "orders"] }), req(["users", "SELECT"], ["orders", "SELECT"])],
    ["SELECT from a router without read_tables", plan({ kind: K.STATEMENT_KIND_SELECT, tables: ["users", "orders"] }), req(["users", "SELECT"], ["orders", "SELECT"])],
    ["INSERT", plan({ kind: K.STATEMENT_KIND_INSERT, tables: ["users"], writeTable: "users" }), req(["users", "INSERT"])],
    ["upsert", plan({ kind: K.STATEMENT_KIND_INSERT, tables: ["users"], writeTable: "users", upsert: true }), req(["users", "INSERT"], ["users", "UPDATE"])],
    ["INSERT … RETURNING", plan({ kind: K.STATEMENT_KIND_INSERT, tables: ["users"], writeTable: "users", readTables: ["users"] }), req(["users", "INSERT"], ["users", "SELECT"])],
    ["UPDATE by key", plan({ kind: K.STATEMENT_KIND_UPDATE, tables: ["users"], writeTable: "users" }), req(["users", "UPDATE"])],
    ["UPDATE reading another table", plan({ kind: K.STATEMENT_KIND_UPDATE, tables: ["orders", "users"], writeTable: "orders", readTables: ["users"] }), req(["orders", "UPDATE"], ["users", "SELECT"])],
    ["DELETE", plan({ kind: K.STATEMENT_KIND_DELETE, tables: ["users"], writeTable: "users" }), req(["users", "DELETE"])],
    ["a write from a router that does not name its target: every table, both", plan({ kind: K.STATEMENT_KIND_DELETE, tables: ["orders", "users"] }), req(["orders", "DELETE"], ["users", "DELETE"], ["orders", "SELECT"], ["users", "SELECT"])],
    ["DDL", plan({ kind: K.STATEMENT_KIND_DDL, tables: ["users"], ddlTable: "users" }), req(["users", "DDL"])],
  ])("%s", (_name, given, expected) => {
    expect(requiredPrivileges(given)).toEqual(expected);
  });
});

describe("GrantIndex", () => {
  const index = new GrantIndex({
    revision: 7,
    enforced: true,
    roles: [
      { role: "readers", tables: { "*": ["SELECT"] } },
      { role: "writers", tables: { orders: ["INSERT", "UPDATE"] } },
      { role: "alice", tables: { users: ["DELETE"] } },
    ],
    members: [{ identity: "alice", roles: ["readers"] }, { identity: "bob", roles: ["writers"] }],
  });

  test("an identity has its own role's privileges, its roles', and * covers every table", () => {
    expect(index.has("alice", "users", "DELETE")).toBe(true);
    expect(index.has("alice", "anything", "SELECT")).toBe(true);
    expect(index.has("alice", "orders", "INSERT")).toBe(false);
    expect(index.has("bob", "orders", "UPDATE")).toBe(true);
    expect(index.has("bob", "orders", "SELECT")).toBe(false);
    expect(index.has("carol", "orders", "SELECT")).toBe(false);
  });

  test("missing lists what is lacking, in order", () => {
    expect(index.missing("bob", req(["orders", "UPDATE"], ["users", "SELECT"], ["orders", "DDL"]))).toEqual(req(["users", "SELECT"], ["orders", "DDL"]));
    expect(index.missing("alice", req(["users", "SELECT"], ["users", "DELETE"]))).toEqual([]);
  });
});
