import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { router } from "@mycelium/proto";
import { createSilentTelemetry } from "@mycelium/telemetry";
import type { Identity } from "@mycelium/tls";
import { GrantStore, openControlStore, type ControlStore } from "@mycelium/topology";
import { AccessControl, asCaller, currentCaller } from "../src/access-control";

const client = (name: string): Identity => ({ networkId: "testnet", role: "client", name, uri: `spiffe://testnet/client/${name}` });
const admin: Identity = { networkId: "testnet", role: "admin", name: "admin", uri: "spiffe://testnet/admin/admin" };
const selectUsers = router.RoutePlan.create({ kind: router.StatementKind.STATEMENT_KIND_SELECT, tables: ["users"], readTables: ["users"] });

let dir: string;
let store: ControlStore;
let access: AccessControl;
let nowMs = 1_000_000;

beforeEach(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), "mycelium-access-"));
  store = await openControlStore(`sqlite:${path.join(dir, "control.db")}`);
  access = new AccessControl(store, new GrantStore(store), createSilentTelemetry().logger, { pollIntervalMs: 50, maxStalenessMs: 30_000, now: () => nowMs });
  await access.start();
});

afterEach(async () => {
  await access.stop();
  await store.close();
  fs.rmSync(dir, { recursive: true, force: true });
});

function refusal(run: () => void): { code: string; reason?: string; message: string; details?: Record<string, string> } {
  try {
    run();
  } catch (error) {
    return error as never;
  }
  throw new Error("no error");
}

test("open until enforced; then only what is granted; admin never checked", async () => {
  expect(() => access.check(client("dave"), selectUsers)).not.toThrow();
  await access.grants.setEnforcement(true);
  await access.refresh();
  const denied = refusal(() => access.check(client("dave"), selectUsers));
  expect(denied).toMatchObject({ code: "PERMISSION_DENIED", reason: "SQL_PRIVILEGE", details: { identity: "dave", table: "users", privilege: "SELECT" } });
  expect(denied.message).toBe("identity dave lacks SELECT on users for this SELECT statement; an admin can grant it: mycelium grant SELECT ON users TO dave");
  expect(() => access.check(admin, selectUsers)).not.toThrow();
});

test("a change made elsewhere is picked up by polling the store's revision", async () => {
  await new GrantStore(store).setEnforcement(true); // another coordinator's write: no refresh() here
  await new Promise((resolve) => setTimeout(resolve, 300));
  expect(refusal(() => access.check(client("dave"), selectUsers)).code).toBe("PERMISSION_DENIED");
  await new GrantStore(store).grant("dave", "users", ["SELECT"]);
  await new Promise((resolve) => setTimeout(resolve, 300));
  expect(() => access.check(client("dave"), selectUsers)).not.toThrow();
});

test("enforced grants not re-read for longer than maxStalenessMs: refused as UNAVAILABLE", async () => {
  await access.grants.setEnforcement(true);
  await access.grants.grant("dave", "users", ["SELECT"]);
  await access.refresh();
  await access.stop(); // no more polling, as if the control store were unreachable
  nowMs += 31_000;
  expect(refusal(() => access.check(client("dave"), selectUsers))).toMatchObject({ code: "UNAVAILABLE", reason: "ACCESS_CONTROL_STALE" });
});

test("a statement routed outside a client call is refused; asCaller scopes the identity across awaits", async () => {
  expect(refusal(() => access.check(undefined, selectUsers))).toMatchObject({ code: "PERMISSION_DENIED" });
  const seen = await asCaller(client("erin"), async () => {
    await new Promise((resolve) => setTimeout(resolve, 5));
    return Promise.resolve().then(() => currentCaller()?.name);
  });
  expect(seen).toBe("erin");
  expect(currentCaller()).toBeUndefined();
});
