#!/usr/bin/env node
// Writes docs/configuration.md from the variable table in @mycelium/config (renderConfigurationReference), so the
// reference cannot drift from what the processes parse.
//
//   pnpm --filter @mycelium/config build          (this script reads packages/config/dist)
//   node scripts/generate-config-docs.js          rewrite docs/configuration.md
//   node scripts/generate-config-docs.js --check  exit 1 when docs/configuration.md is not what would be written
"use strict";

const fs = require("node:fs");
const path = require("node:path");

const repo = path.resolve(__dirname, "..");
const target = path.join(repo, "docs", "configuration.md");
const configDist = path.join(repo, "packages", "config", "dist", "index.js");

const args = process.argv.slice(2);
const unknown = args.filter((arg) => arg !== "--check");
if (unknown.length > 0) {
  process.stderr.write(`usage: node scripts/generate-config-docs.js [--check]\nunknown argument: ${unknown.join(" ")}\n`);
  process.exit(2);
}
const check = args.includes("--check");

if (!fs.existsSync(configDist)) {
  process.stderr.write(`${path.relative(repo, configDist)} is missing: run \`pnpm --filter @mycelium/config build\` first\n`);
  process.exit(2);
}
const { renderConfigurationReference } = require(configDist);

// How the variables are read, beyond what the generated reference says about units and formats. Inserted after
// the reference's own introduction, before the first table.
const howItIsRead = `## How the variables are read

- Each service (\`coordinator\`, \`shard-router\`, \`replicator\`, \`node-agent\`) reads its environment once, at
  start, with \`loadConfig\` from \`@mycelium/config\`, and passes the result down; no other code reads
  \`MYCELIUM_*\` variables. Changing a variable takes effect at the next start. (Tracing export is configured by the
  standard \`OTEL_*\` variables, which are not listed here.)
- The whole configuration is checked at once: every value's format and range, the variables the service requires,
  cross-field rules (\`MIN_PROTOCOL_VERSION\` ≤ \`PROTOCOL_VERSION\`, \`REPLICATION_HEARTBEAT_TIMEOUT\` longer than
  \`REPLICATION_HEARTBEAT_INTERVAL\`, \`REPLICATION_RETRY_INITIAL\` ≤ \`REPLICATION_RETRY_MAX\`, \`PUBLIC_KEY\` the
  public half of \`PRIVATE_KEY\`, \`METRICS_PORT\` ≠ \`PORT\`), that the TLS files are readable, and that there is no
  unknown \`MYCELIUM_*\` name (a typo gets a "did you mean" suggestion).
- On any problem the process does not start: it prints \`<service>: invalid configuration\` and one line per problem
  naming the variable, what it expected and what it got, e.g.
  \`MYCELIUM_PORT: expected an integer port 0-65535, got "80800"\`, then exits with status 2. Secrets
  (\`PRIVATE_KEY\`, passwords in \`DATABASE_URL\` and \`CONTROL_STORE_URL\`) are never printed, not even when malformed.
- In the "Required" column, a service name means that service refuses to start without the variable; "when …"
  means it is required only when another variable has that value.
- On Kubernetes the Helm chart sets these variables from its values; see \`deploy/helm/mycelium/README.md\`.

`;

const reference = renderConfigurationReference();
const firstTable = reference.indexOf("\n## ");
if (firstTable === -1) throw new Error("renderConfigurationReference() returned no section; update scripts/generate-config-docs.js");
const generated =
  reference.slice(0, firstTable + 1).replace(
    "<!-- Generated from packages/config (configVariables); do not edit by hand. -->",
    "<!-- Generated from packages/config (configVariables) by scripts/generate-config-docs.js; do not edit by hand. -->",
  ) +
  howItIsRead +
  reference.slice(firstTable + 1).replace(/\n*$/, "\n");

if (check) {
  const current = fs.existsSync(target) ? fs.readFileSync(target, "utf8") : "";
  if (current !== generated) {
    process.stderr.write(
      `docs/configuration.md is out of date with packages/config: run \`pnpm --filter @mycelium/config build && node scripts/generate-config-docs.js\`\n`,
    );
    process.exit(1);
  }
  process.stdout.write("docs/configuration.md is up to date\n");
} else {
  fs.mkdirSync(path.dirname(target), { recursive: true });
  fs.writeFileSync(target, generated);
  process.stdout.write(`wrote ${path.relative(repo, target)}\n`);
}
