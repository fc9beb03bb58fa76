// `helm test`: a statement through the coordinator with the chart's client certificate
// (spiffe://<network>/client/helm-test), through the image's own CLI, and a check of the answer.
//
// A statement needs a table with a policy, which only an admin may create: the chart's admin certificate
// (spiffe://<network>/admin/helm-test) sets up table mycelium_helm_test (one shard, one row: id 1, answer 42) and grants
// the client SELECT on it; the client then reads the row back through the coordinator and the node that holds it.
// Every step is idempotent, so the test can run again; the table stays (DROP TABLE mycelium_helm_test, then
// `mycelium policy delete mycelium_helm_test`, to remove it).
//
//   TEST_COORDINATOR, TEST_ROUTER, TEST_NETWORK_ID, TEST_CLIENT_DIR and TEST_ADMIN_DIR (tls.crt, tls.key, ca.crt),
//   TEST_CLIENT_NAME (the client identity's name), TEST_ENTRYPOINT (the image's entry point)
"use strict";

const { spawnSync } = require("node:child_process");
const path = require("node:path");

const setting = (name) => {
  const value = (process.env[name] ?? "").trim();
  if (value === "") {
    process.stderr.write(`mycelium helm test: ${name} is not set (the chart sets it)\n`);
    process.exit(1);
  }
  return value;
};
const coordinator = setting("TEST_COORDINATOR");
const table = "mycelium_helm_test";

/** `mycelium <args>` as the identity whose certificate is in `dir`; exits the test with what failed. */
function mycelium(dir, args) {
  const connection = [
    "--coordinator", coordinator,
    "--router", setting("TEST_ROUTER"),
    "--network-id", setting("TEST_NETWORK_ID"),
    "--cert", path.join(dir, "tls.crt"),
    "--key", path.join(dir, "tls.key"),
    "--ca", path.join(dir, "ca.crt"),
  ];
  const ran = spawnSync(process.execPath, [setting("TEST_ENTRYPOINT"), "mycelium", ...args, ...connection], { encoding: "utf8", timeout: 60_000 });
  if (ran.status !== 0) {
    process.stderr.write(`mycelium helm test: mycelium ${args.join(" ")} (as ${path.basename(dir)}) failed (${ran.status ?? ran.signal ?? ran.error}):\n${ran.stderr}${ran.stdout}`);
    process.exit(1);
  }
  return ran.stdout;
}

const admin = setting("TEST_ADMIN_DIR");
const client = setting("TEST_CLIENT_DIR");
mycelium(admin, ["policy", "set", table, "--shard-keys", "id", "--shards", "1"]);
mycelium(admin, ["sql", "-e", `CREATE TABLE IF NOT EXISTS ${table} (id INTEGER PRIMARY KEY, answer INTEGER NOT NULL)`]);
mycelium(admin, ["grant", "SELECT", "ON", table, "TO", setting("TEST_CLIENT_NAME")]);
mycelium(admin, ["sql", "-e", `DELETE FROM ${table} WHERE id = 1`]);
mycelium(admin, ["sql", "-e", `INSERT INTO ${table} (id, answer) VALUES (1, 42)`]);

const statement = `SELECT answer FROM ${table} WHERE id = 1`;
const printed = mycelium(client, ["sql", "--json", "-e", statement]);
let answer;
try {
  answer = JSON.parse(printed);
} catch {
  process.stderr.write(`mycelium helm test: the CLI did not print JSON:\n${printed}\n`);
  process.exit(1);
}
const expected = JSON.stringify({ columns: ["answer"], rows: [[42]] });
const got = JSON.stringify({ columns: answer.columns, rows: answer.rows });
if (got !== expected) {
  process.stderr.write(`mycelium helm test: "${statement}" answered ${got}, expected ${expected}\n`);
  process.exit(1);
}
process.stdout.write(`ok: "${statement}" through ${coordinator} as the client answered 42\n`);
