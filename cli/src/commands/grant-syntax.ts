import { coordinator } from "@mycelium/proto";

const privilegeNames: Record<string, coordinator.Privilege> = {
  SELECT: coordinator.Privilege.PRIVILEGE_SELECT,
  INSERT: coordinator.Privilege.PRIVILEGE_INSERT,
  UPDATE: coordinator.Privilege.PRIVILEGE_UPDATE,
  DELETE: coordinator.Privilege.PRIVILEGE_DELETE,
  DDL: coordinator.Privilege.PRIVILEGE_DDL,
};

export type GrantChange =
  | { kind: "privileges"; privileges: coordinator.Privilege[]; table: string; grantee: string }
  | { kind: "role"; role: string; grantee: string };

/**
 * `SELECT,INSERT ON users TO alice`, `ALL ON * TO admins`, `ROLE readers TO alice` (for revoke, FROM as
 * well as TO). Keywords and privileges are case-insensitive.
 */
export function parseGrant(words: readonly string[], verb: "grant" | "revoke"): GrantChange {
  const usage = `usage: mycelium ${verb} <privilege[,...]|ALL> ON <table|*> ${verb === "grant" ? "TO" : "FROM"} <identity-or-role>, or mycelium ${verb} ROLE <role> ${verb === "grant" ? "TO" : "FROM"} <identity>`;
  const joined = words.join(" ").trim();
  const target = /^(.*)\s+(?:to|from)\s+(\S+)$/i.exec(joined);
  if (!target) throw new Error(usage);
  const [, what = "", grantee = ""] = target;
  const role = /^role\s+(\S+)$/i.exec(what.trim());
  if (role) return { kind: "role", role: role[1]!, grantee };
  const on = /^(.*?)\s+on\s+(\S+)$/i.exec(what.trim());
  if (!on) throw new Error(usage);
  const names = on[1]!.split(/[\s,]+/).filter(Boolean).map((name) => name.toUpperCase());
  if (names.length === 0) throw new Error(usage);
  const privileges: coordinator.Privilege[] = [];
  for (const name of names) {
    if (name === "ALL") privileges.push(...Object.values(privilegeNames));
    else if (privilegeNames[name] !== undefined) privileges.push(privilegeNames[name]);
    else throw new Error(`unknown privilege ${name}; expected SELECT, INSERT, UPDATE, DELETE, DDL or ALL`);
  }
  return { kind: "privileges", privileges: [...new Set(privileges)], table: on[2]!, grantee };
}

export function privilegeName(privilege: coordinator.Privilege): string {
  return coordinator.privilegeToJSON(privilege).replace("PRIVILEGE_", "");
}
