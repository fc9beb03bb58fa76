import { router } from "@mycelium/proto";
import type { GrantSnapshot, Privilege } from "@mycelium/topology";

export type { Privilege };

export interface RequiredPrivilege {
  table: string;
  privilege: Privilege;
}

const writePrivilege: Partial<Record<router.StatementKind, Privilege>> = {
  [router.StatementKind.STATEMENT_KIND_INSERT]: "INSERT",
  [router.StatementKind.STATEMENT_KIND_UPDATE]: "UPDATE",
  [router.StatementKind.STATEMENT_KIND_DELETE]: "DELETE",
};

/**
 * The privileges a routed statement needs, from its plan: DDL needs DDL on the table it defines; every
 * table a statement reads needs SELECT; the written table needs the statement's write privilege (and
 * UPDATE too for an upsert, which may change existing rows). The written table does not need SELECT for
 * the rows its own WHERE clause picks — only when the statement reads it again (a subquery on it,
 * RETURNING). A plan from a router that does not say which table it writes is read conservatively:
 * every table it names needs the write privilege and SELECT.
 */
export function requiredPrivileges(plan: router.RoutePlan): RequiredPrivilege[] {
  const required: RequiredPrivilege[] = [];
  const add = (table: string, privilege: Privilege) => {
    if (table && !required.some((r) => r.table === table && r.privilege === privilege)) required.push({ table, privilege });
  };
  if (plan.kind === router.StatementKind.STATEMENT_KIND_DDL) {
    add(plan.ddlTable || plan.tables[0] || "", "DDL");
    return required;
  }
  const write = writePrivilege[plan.kind];
  if (!write) {
    for (const table of plan.readTables.length > 0 ? plan.readTables : plan.tables) add(table, "SELECT");
    return required;
  }
  if (plan.writeTable) {
    add(plan.writeTable, write);
    if (plan.upsert) add(plan.writeTable, "UPDATE");
    for (const table of plan.readTables) add(table, "SELECT");
    return required;
  }
  for (const table of plan.tables) add(table, write);
  for (const table of plan.tables) add(table, "SELECT");
  return required;
}

/**
 * Grants indexed for checking: which privileges an identity has on a table — the union over the role of
 * its own name and the roles it is a member of, of their privileges on the table and on `*`.
 */
export class GrantIndex {
  private readonly roles = new Map<string, Map<string, Set<Privilege>>>();
  private readonly memberships = new Map<string, string[]>();

  constructor(readonly snapshot: GrantSnapshot) {
    for (const role of snapshot.roles) {
      this.roles.set(role.role, new Map(Object.entries(role.tables).map(([table, list]) => [table, new Set(list)])));
    }
    for (const member of snapshot.members) this.memberships.set(member.identity, member.roles);
  }

  get enforced(): boolean {
    return this.snapshot.enforced;
  }

  has(identity: string, table: string, privilege: Privilege): boolean {
    for (const role of [identity, ...(this.memberships.get(identity) ?? [])]) {
      const tables = this.roles.get(role);
      if (tables?.get(table)?.has(privilege) || tables?.get("*")?.has(privilege)) return true;
    }
    return false;
  }

  /** What `identity` lacks of `required`, in order (empty: allowed). */
  missing(identity: string, required: readonly RequiredPrivilege[]): RequiredPrivilege[] {
    return required.filter(({ table, privilege }) => !this.has(identity, table, privilege));
  }
}

/** "SELECT on orders, INSERT on users" */
export function describePrivileges(list: readonly RequiredPrivilege[]): string {
  return list.map(({ table, privilege }) => `${privilege} on ${table}`).join(", ");
}
