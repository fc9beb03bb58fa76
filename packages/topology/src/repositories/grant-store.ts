import type { ControlStore } from "../control-store";
import { TopologyError } from "../topology-error";
import { jsonCodec, Repository } from "./repository";

export type Privilege = "SELECT" | "INSERT" | "UPDATE" | "DELETE" | "DDL";
export const privileges: readonly Privilege[] = ["SELECT", "INSERT", "UPDATE", "DELETE", "DDL"];

/** A role's privileges per table; the table `*` means every table. */
export interface RoleGrants {
  role: string;
  tables: Record<string, Privilege[]>;
}

/** The roles a client identity (its certificate name) has. */
export interface Membership {
  identity: string;
  roles: string[];
}

/** Whether statements are checked (`access/enforcement`). */
export interface Enforcement {
  enforced: boolean;
  changedAtMs: number;
}

/** Everything the coordinator's access check needs, read at one revision. */
export interface GrantSnapshot {
  revision: number;
  enforced: boolean;
  roles: RoleGrants[];
  members: Membership[];
}

function assertName(kind: string, name: string): void {
  if (typeof name !== "string" || name.trim() === "" || name !== name.trim()) {
    throw new TopologyError("INVALID_ARGUMENT", `${kind} ${JSON.stringify(name)} must be a non-empty name without surrounding spaces`);
  }
}

function assertPrivileges(list: readonly string[]): asserts list is Privilege[] {
  for (const privilege of list) {
    if (!privileges.includes(privilege as Privilege)) {
      throw new TopologyError("INVALID_ARGUMENT", `unknown privilege ${privilege}; expected one of ${privileges.join(", ")}`);
    }
  }
}

/**
 * Access control: `roles/<role>` → RoleGrants, `members/<identity>` → Membership, `access/enforcement`
 * → Enforcement (JSON). Every identity is also a role of its own name, so privileges can be granted to
 * an identity directly.
 */
export class GrantStore {
  private readonly roles: Repository<RoleGrants>;
  private readonly members: Repository<Membership>;
  private readonly settings: Repository<Enforcement>;

  constructor(private readonly store: ControlStore) {
    this.roles = new Repository(store, "roles/", jsonCodec<RoleGrants>());
    this.members = new Repository(store, "members/", jsonCodec<Membership>());
    this.settings = new Repository(store, "access/", jsonCodec<Enforcement>());
  }

  async grant(role: string, table: string, granted: readonly Privilege[]): Promise<RoleGrants> {
    assertName("role", role);
    assertName("table", table);
    assertPrivileges(granted);
    const updated = await this.roles.update(role, (current) => {
      const tables = { ...(current?.value.tables ?? {}) };
      tables[table] = privileges.filter((privilege) => granted.includes(privilege) || (tables[table] ?? []).includes(privilege));
      return { role, tables };
    });
    return updated!.value;
  }

  async revoke(role: string, table: string, revoked: readonly Privilege[]): Promise<RoleGrants | null> {
    assertPrivileges(revoked);
    const updated = await this.roles.update(role, (current) => {
      if (!current) return undefined;
      const tables = { ...current.value.tables };
      const remaining = (tables[table] ?? []).filter((privilege) => !revoked.includes(privilege));
      if (remaining.length > 0) tables[table] = remaining;
      else delete tables[table];
      return { role, tables };
    });
    return updated?.value ?? null;
  }

  async getRole(role: string): Promise<RoleGrants | null> {
    return (await this.roles.get(role))?.value ?? null;
  }

  async listRoles(): Promise<RoleGrants[]> {
    return (await this.roles.list()).map((found) => found.value);
  }

  async assignRole(identity: string, role: string): Promise<void> {
    assertName("identity", identity);
    assertName("role", role);
    await this.members.update(identity, (current) => {
      const roles = current?.value.roles ?? [];
      return roles.includes(role) ? undefined : { identity, roles: [...roles, role].sort() };
    });
  }

  async unassignRole(identity: string, role: string): Promise<void> {
    await this.members.update(identity, (current) => {
      if (!current || !current.value.roles.includes(role)) return undefined;
      const roles = current.value.roles.filter((name) => name !== role);
      return roles.length > 0 ? { identity, roles } : null;
    });
  }

  async rolesOf(identity: string): Promise<string[]> {
    return (await this.members.get(identity))?.value.roles ?? [];
  }

  async listMembers(): Promise<Membership[]> {
    return (await this.members.list()).map((found) => found.value);
  }

  /** Off (every client may run every statement) until set; see docs/operations.md. */
  async enforcement(): Promise<Enforcement> {
    return (await this.settings.get("enforcement"))?.value ?? { enforced: false, changedAtMs: 0 };
  }

  async setEnforcement(enforced: boolean, atMs = Date.now()): Promise<void> {
    await this.settings.put("enforcement", { enforced, changedAtMs: atMs });
  }

  /**
   * Roles, members and enforcement. The revision is read first: a change made while the lists are read
   * raises the revision past it, so a cache keyed by it reloads.
   */
  async snapshot(): Promise<GrantSnapshot> {
    const revision = await this.store.revision();
    const [roles, members, enforcement] = await Promise.all([this.listRoles(), this.listMembers(), this.enforcement()]);
    return { revision, enforced: enforcement.enforced, roles, members };
  }

  /**
   * What `identity` may do on `table`: the union over its roles (and the role of its own name) of the
   * table's and `*`'s privileges.
   */
  async privilegesOf(identity: string, table: string): Promise<Privilege[]> {
    const granted = new Set<Privilege>();
    for (const role of [identity, ...(await this.rolesOf(identity))]) {
      const grants = await this.getRole(role);
      for (const privilege of [...(grants?.tables[table] ?? []), ...(grants?.tables["*"] ?? [])]) granted.add(privilege);
    }
    return privileges.filter((privilege) => granted.has(privilege));
  }
}
