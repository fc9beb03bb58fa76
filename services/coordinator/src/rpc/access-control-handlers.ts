import { coordinator } from "@mycelium/proto";
import { MyceliumError, type ServiceHandlers } from "@mycelium/rpc";
import { TopologyError, type GrantSnapshot, type Privilege } from "@mycelium/topology";
import type { AccessControl } from "../access-control";

const byEnum: Record<number, Privilege> = {
  [coordinator.Privilege.PRIVILEGE_SELECT]: "SELECT",
  [coordinator.Privilege.PRIVILEGE_INSERT]: "INSERT",
  [coordinator.Privilege.PRIVILEGE_UPDATE]: "UPDATE",
  [coordinator.Privilege.PRIVILEGE_DELETE]: "DELETE",
  [coordinator.Privilege.PRIVILEGE_DDL]: "DDL",
};
const toEnum = Object.fromEntries(Object.entries(byEnum).map(([value, name]) => [name, Number(value)])) as Record<Privilege, coordinator.Privilege>;

interface Change {
  grantee: string;
  privileges: Privilege[];
  table: string;
  role: string;
}

/** A grant or revoke request, checked: a grantee, and either privileges on a table or a role. */
function changeOf(request: coordinator.GrantRequest | coordinator.RevokeRequest): Change {
  const grantee = request.grantee.trim();
  if (!grantee) throw new MyceliumError("INVALID_ARGUMENT", "grantee (a role or client identity) is required");
  const privileges = request.privileges.map((p) => {
    const name = byEnum[p];
    if (!name) throw new MyceliumError("INVALID_ARGUMENT", `unknown privilege ${p}; expected SELECT, INSERT, UPDATE, DELETE or DDL`);
    return name;
  });
  const table = request.table.trim().toLowerCase();
  const role = request.role.trim();
  if (role && (privileges.length > 0 || table)) throw new MyceliumError("INVALID_ARGUMENT", "give either privileges on a table, or a role — not both");
  if (!role && (privileges.length === 0 || !table)) throw new MyceliumError("INVALID_ARGUMENT", "give privileges and a table (or * for every table), or a role");
  if (role === grantee) throw new MyceliumError("INVALID_ARGUMENT", `${grantee} cannot be a member of itself`);
  return { grantee, privileges, table, role };
}

export function listGrantsResponse(snapshot: GrantSnapshot): coordinator.ListGrantsResponse {
  return coordinator.ListGrantsResponse.create({
    enforced: snapshot.enforced,
    roles: snapshot.roles
      .map((role) => ({
        role: role.role,
        tables: Object.entries(role.tables)
          .sort(([a], [b]) => (a < b ? -1 : 1))
          .map(([table, list]) => ({ table, privileges: list.map((p) => toEnum[p]) })),
      }))
      .filter((role) => role.tables.length > 0),
    members: snapshot.members.map((member) => ({ identity: member.identity, roles: member.roles })),
    revision: snapshot.revision,
  });
}

/** AccessControlService (admin only): changes go to the control store, then this coordinator's cache. */
export function accessControlHandlers(access: AccessControl): ServiceHandlers<typeof coordinator.AccessControlServiceService> {
  const { grants } = access;
  const changed = async () => {
    await access.refresh();
    return listGrantsResponse(await grants.snapshot());
  };
  return {
    async grant(request) {
      const change = changeOf(request);
      await topology<unknown>(() => (change.role ? grants.assignRole(change.grantee, change.role) : grants.grant(change.grantee, change.table, change.privileges)));
      return coordinator.GrantResponse.create({ grants: await changed() });
    },
    async revoke(request) {
      const change = changeOf(request);
      await topology<unknown>(() => (change.role ? grants.unassignRole(change.grantee, change.role) : grants.revoke(change.grantee, change.table, change.privileges)));
      return coordinator.RevokeResponse.create({ grants: await changed() });
    },
    async listGrants() {
      return listGrantsResponse(await grants.snapshot());
    },
    async setEnforcement(request) {
      await topology(() => grants.setEnforcement(request.enforced));
      await access.refresh();
      return coordinator.SetEnforcementResponse.create({ enforced: request.enforced });
    },
  };
}

async function topology<T>(work: () => Promise<T>): Promise<T> {
  try {
    return await work();
  } catch (error) {
    if (error instanceof TopologyError) {
      const code = error.code === "INVALID_ARGUMENT" ? "INVALID_ARGUMENT" : error.code === "CONFLICT" ? "ABORTED" : "UNAVAILABLE";
      throw new MyceliumError(code, error.message, { reason: `CONTROL_STORE_${error.code}` });
    }
    throw error;
  }
}
