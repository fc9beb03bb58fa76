import type { Command } from "commander";
import type { MyceliumClient } from "@mycelium/client";
import { coordinator } from "@mycelium/proto";
import { resolveConnection, type ConnectionFlags } from "../local-cluster/cluster-info";
import { renderTable, toJson } from "../output/format";
import { withConnectionFlags } from "./connect";
import { parseGrant, privilegeName } from "./grant-syntax";
import { withAdmin } from "./policy";

const grantHelp = `
Privileges: SELECT, INSERT, UPDATE, DELETE, DDL (or ALL), on one table or * (every table). The grantee
is a role or a client identity (the <name> of a client certificate, spiffe://<network>/client/<name>);
every identity is also a role of its own name. ROLE <role> TO <identity> makes the identity a member.

A statement needs SELECT on every table it reads, INSERT/UPDATE/DELETE on the table it writes (UPDATE
too for an upsert), DDL on the table it defines. The admin identity is never checked.

Nothing is checked until enforcement is turned on: \`mycelium grants enforce\` (and \`grants open\` turns
it off). A change reaches every coordinator within about a second.

Examples:
  mycelium grant SELECT ON * TO readers
  mycelium grant ROLE readers TO alice
  mycelium grant SELECT,INSERT,UPDATE ON orders TO order-service
  mycelium grants enforce`;

export function registerGrants(program: Command): void {
  withConnectionFlags(
    program
      .command("grant <words...>")
      .description("give privileges on a table to an identity or role, or a role to an identity (admin)")
      .option("--json", "print the grants afterwards as JSON")
      .addHelpText("after", grantHelp),
  ).action(async (words: string[], options: ConnectionFlags & { json?: boolean }) => {
    await withAdmin(options, async (client) => {
      const change = parseGrant(words, "grant");
      const response = await service(client, options).grant(coordinator.GrantRequest.create(request(change)));
      print(response.grants!, options.json, `granted ${describe(change, "to")}`);
    });
  });

  withConnectionFlags(
    program
      .command("revoke <words...>")
      .description("take privileges (or a role) back: mycelium revoke <privileges> ON <table> FROM <grantee> (admin)")
      .option("--json", "print the grants afterwards as JSON"),
  ).action(async (words: string[], options: ConnectionFlags & { json?: boolean }) => {
    await withAdmin(options, async (client) => {
      const change = parseGrant(words, "revoke");
      const response = await service(client, options).revoke(coordinator.RevokeRequest.create(request(change)));
      print(response.grants!, options.json, `revoked ${describe(change, "from")}`);
    });
  });

  const grants = withConnectionFlags(
    program.command("grants").description("list roles, privileges and members, and whether access control is enforced (admin)").option("--json", "print JSON"),
  ).action(async (options: ConnectionFlags & { json?: boolean }) => {
    await withAdmin(options, async (client) => {
      print(await service(client, options).listGrants(coordinator.ListGrantsRequest.create({}), { idempotent: true }), options.json, null);
    });
  });

  for (const [name, enforced, description] of [
    ["enforce", true, "check every client statement against the grants (deny what is not granted)"],
    ["open", false, "stop checking: every client may run every statement"],
  ] as const) {
    withConnectionFlags(grants.command(name).description(description)).action(async (_options: ConnectionFlags, command: Command) => {
      // `grants` has the same options and takes them wherever they are written: read both levels.
      const options = command.optsWithGlobals<ConnectionFlags>();
      await withAdmin(options, async (client) => {
        await service(client, options).setEnforcement(coordinator.SetEnforcementRequest.create({ enforced }));
        process.stdout.write(enforced ? "access control enforced: statements need grants (admin is not checked)\n" : "access control open: every client may run every statement\n");
      });
    });
  }
}

function service(client: MyceliumClient, options: ConnectionFlags) {
  return client.pool.service(coordinator.AccessControlServiceService, resolveConnection(options, "admin").coordinatorAddress);
}

function request(change: ReturnType<typeof parseGrant>): Partial<coordinator.GrantRequest> {
  return change.kind === "role" ? { grantee: change.grantee, role: change.role } : { grantee: change.grantee, privileges: change.privileges, table: change.table };
}

function describe(change: ReturnType<typeof parseGrant>, preposition: "to" | "from"): string {
  const what = change.kind === "role" ? `role ${change.role}` : `${change.privileges.map(privilegeName).join(",")} on ${change.table}`;
  return `${what} ${preposition} ${change.grantee}`;
}

function print(grants: coordinator.ListGrantsResponse, json: boolean | undefined, headline: string | null): void {
  if (json) {
    process.stdout.write(toJson(coordinator.ListGrantsResponse.toJSON(grants)) + "\n");
    return;
  }
  if (headline) process.stdout.write(`${headline}\n`);
  process.stdout.write(`access control: ${grants.enforced ? "enforced" : "open (not enforced; `mycelium grants enforce` turns it on)"}\n`);
  const rows = grants.roles.flatMap((role) => role.tables.map((t) => [role.role, t.table, t.privileges.map(privilegeName).join(",")]));
  if (rows.length > 0) process.stdout.write(renderTable(["role", "table", "privileges"], rows).split("\n").slice(0, -1).join("\n") + "\n");
  const members = grants.members.map((m) => [m.identity, m.roles.join(", ")]);
  if (members.length > 0) process.stdout.write(renderTable(["identity", "roles"], members).split("\n").slice(0, -1).join("\n") + "\n");
}
