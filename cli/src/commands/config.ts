import type { Command } from "commander";
import { ConfigError, describeConfig, loadConfig, serviceNames, type ServiceName } from "@mycelium/config";
import { renderTable } from "../output/format";

export function registerConfig(program: Command): void {
  program
    .command("config")
    .description("print the effective configuration from the MYCELIUM_* environment (secrets redacted)")
    .option("--service <name>", `whose rules to apply: ${serviceNames.join(", ")}`, "cli")
    .action((options: { service: string }) => {
      if (!(serviceNames as readonly string[]).includes(options.service)) throw new Error(`--service must be one of ${serviceNames.join(", ")}`);
      try {
        const config = loadConfig(process.env, { service: options.service as ServiceName });
        const rows = describeConfig(config).map((entry) => [entry.variable, entry.value, entry.isDefault ? "default" : "set"]);
        process.stdout.write(renderTable(["variable", "value", "source"], rows) + "\n");
      } catch (error) {
        if (error instanceof ConfigError) {
          process.stderr.write(`invalid configuration\n${error.message}\n`);
          process.exitCode = 2;
          return;
        }
        throw error;
      }
    });
}
