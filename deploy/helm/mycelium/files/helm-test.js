// `helm test`: runs one statement through the coordinator with the chart's client certificate
// (spiffe://<network>/client/helm-test), through the image's own CLI, and checks the answer.
//
//   TEST_COORDINATOR, TEST_NETWORK_ID, TEST_CERTIFICATES_DIR (tls.crt, tls.key, ca.crt), TEST_ENTRYPOINT
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
const certificates = setting("TEST_CERTIFICATES_DIR");
const statement = "SELECT 6 * 7 AS answer";
const args = [
  setting("TEST_ENTRYPOINT"),
  "mycelium",
  "sql",
  "--coordinator",
  setting("TEST_COORDINATOR"),
  "--network-id",
  setting("TEST_NETWORK_ID"),
  "--cert",
  path.join(certificates, "tls.crt"),
  "--key",
  path.join(certificates, "tls.key"),
  "--ca",
  path.join(certificates, "ca.crt"),
  "--json",
  "-e",
  statement,
];
const ran = spawnSync(process.execPath, args, { encoding: "utf8", timeout: 60_000 });
if (ran.status !== 0) {
  process.stderr.write(`mycelium helm test: "${statement}" through ${process.env.TEST_COORDINATOR} failed (${ran.status ?? ran.signal ?? ran.error}):\n${ran.stderr}${ran.stdout}`);
  process.exit(1);
}
let answer;
try {
  answer = JSON.parse(ran.stdout);
} catch {
  process.stderr.write(`mycelium helm test: the CLI did not print JSON:\n${ran.stdout}\n`);
  process.exit(1);
}
const expected = JSON.stringify({ columns: ["answer"], rows: [[42]] });
const got = JSON.stringify({ columns: answer.columns, rows: answer.rows });
if (got !== expected) {
  process.stderr.write(`mycelium helm test: "${statement}" answered ${got}, expected ${expected}\n`);
  process.exit(1);
}
process.stdout.write(`ok: "${statement}" through ${process.env.TEST_COORDINATOR} answered 42\n`);
