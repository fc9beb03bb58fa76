export { TestCluster, fastTimings, type TestClusterOptions } from "./test-cluster";
export { eventually } from "./eventually";
export { runCli, runProcess, cliPath, type CliResult } from "./run-cli";
export { InProcessCluster, type InProcessClusterOptions } from "./in-process-cluster";
import { testing } from "@mycelium/db";
export const startPostgresServer = testing.startPostgresServer;
