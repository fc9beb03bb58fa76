#!/usr/bin/env node
import { Command, CommanderError } from "commander";
import { silenceIpServerNameWarning } from "@mycelium/runtime";
import { registerCerts, registerKeygen } from "./commands/certs";
import { registerClusterViews } from "./commands/cluster";
import { registerConfig } from "./commands/config";
import { registerConflicts } from "./commands/conflicts";
import { registerDashboard } from "./commands/dashboard";
import { registerDemo } from "./commands/demo";
import { registerGrants } from "./commands/grants";
import { registerMigrate } from "./commands/migrate";
import { registerPolicy } from "./commands/policy";
import { registerSql } from "./commands/sql";
import { registerTraces } from "./commands/traces";
import { registerTxn } from "./commands/txn";
import { registerUp } from "./commands/up";

silenceIpServerNameWarning();

const program = new Command()
  .name("mycelium")
  .description("Mycelium: a distributed SQL layer for a network of validator and miner nodes")
  .version("0.1.0")
  .showHelpAfterError();

registerUp(program);
registerDemo(program);
registerSql(program);
registerPolicy(program);
registerMigrate(program);
registerGrants(program);
registerClusterViews(program);
registerTxn(program);
registerConflicts(program);
registerDashboard(program);
registerTraces(program);
registerCerts(program);
registerKeygen(program);
registerConfig(program);

program.exitOverride();
program.parseAsync(process.argv).catch((error: unknown) => {
  if (error instanceof CommanderError) process.exit(error.exitCode);
  process.stderr.write(`mycelium: ${error instanceof Error ? error.message : String(error)}\n`);
  process.exit(1);
});
