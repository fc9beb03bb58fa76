import { ConfigError, loadConfig, type MyceliumConfig, type ServiceName } from "@mycelium/config";
import { silenceIpServerNameWarning } from "./warnings";

export interface Stoppable {
  stop(): Promise<void>;
}

/**
 * The whole of a service's main(): read the configuration (a bad value stops the process with exit
 * code 2 and a message naming the variable), start, and stop cleanly on SIGTERM or SIGINT. A second
 * signal, or a stop that takes longer than 30 s, exits at once.
 */
export function runMain(service: ServiceName, start: (config: MyceliumConfig) => Promise<Stoppable>): void {
  silenceIpServerNameWarning();
  let config: MyceliumConfig;
  try {
    config = loadConfig(process.env, { service });
  } catch (error) {
    if (error instanceof ConfigError) {
      process.stderr.write(`${service}: invalid configuration\n${error.message}\n`);
      process.exit(2);
    }
    throw error;
  }
  let stopping = false;
  start(config).then(
    (running) => {
      const stop = (signal: string) => {
        if (stopping) {
          process.stderr.write(`${service}: ${signal} again, exiting now\n`);
          process.exit(1);
        }
        stopping = true;
        const timer = setTimeout(() => {
          process.stderr.write(`${service}: stop took longer than 30 s, exiting\n`);
          process.exit(1);
        }, 30_000);
        timer.unref();
        running.stop().then(
          () => process.exit(0),
          (error: unknown) => {
            process.stderr.write(`${service}: error while stopping: ${String(error)}\n`);
            process.exit(1);
          },
        );
      };
      process.on("SIGTERM", () => stop("SIGTERM"));
      process.on("SIGINT", () => stop("SIGINT"));
    },
    (error: unknown) => {
      process.stderr.write(`${service}: failed to start: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
      process.exit(1);
    },
  );
}

/** OTLP export is on when the standard OTEL_* variables ask for it (read here, in main, only). */
export function otlpRequested(env: NodeJS.ProcessEnv): boolean {
  if ((env.OTEL_TRACES_EXPORTER ?? "").split(",").map((s) => s.trim()).includes("none")) return false;
  return Boolean(env.OTEL_EXPORTER_OTLP_ENDPOINT || env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT);
}
