#!/usr/bin/env node
// The container image's entry point (Dockerfile): one image runs every Mycelium process, chosen by the first argument.
//
//   coordinator | shard-router | replicator | node-agent   that service, configured by MYCELIUM_* (docs/configuration.md)
//   mycelium <command> …                                   the CLI: certs init, keygen, sql, up, …
//
// The service runs in this very process (no child), so node is PID 1 of the container and receives SIGTERM itself:
// every service installs its own SIGTERM/SIGINT handlers (runMain) and stops within 30 s. Nothing here needs a shell.
"use strict";

const path = require("node:path");

const services = {
  coordinator: "@mycelium/coordinator",
  "shard-router": "@mycelium/shard-router",
  replicator: "@mycelium/replicator",
  "node-agent": "@mycelium/node-agent",
};

const usage = `usage: <image> coordinator | shard-router | replicator | node-agent   (configured by MYCELIUM_* variables)
       <image> mycelium <command> [options]                             (the CLI; try: mycelium --help)
`;

const what = process.argv[2];
if (what !== undefined && Object.hasOwn(services, what)) {
  // The service sees the arguments after its name, as if started as `node services/<name>/dist/main.js`.
  process.argv.splice(2, 1);
  require(path.join(path.dirname(require.resolve(`${services[what]}/package.json`)), "dist", "main.js"));
} else if (what === "mycelium") {
  process.argv.splice(2, 1);
  require("../dist/main.js");
} else if (what === undefined || what === "--help" || what === "-h") {
  process.stdout.write(usage);
} else {
  process.stderr.write(`unknown process "${what}"\n${usage}`);
  process.exit(2);
}
