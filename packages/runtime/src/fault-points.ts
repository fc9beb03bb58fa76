import type { Logger } from "@mycelium/telemetry";

/**
 * Crash points for recovery tests (MYCELIUM_FAULT_POINTS): the process kills itself with SIGKILL —
 * no cleanup, no flush beyond what is already durable — the first time it reaches a named point.
 * With no points configured, `hit` costs one Set lookup.
 */
export class FaultPoints {
  private readonly armed: Set<string>;

  constructor(names: readonly string[], private readonly logger?: Logger) {
    this.armed = new Set(names);
  }

  static none(): FaultPoints {
    return new FaultPoints([]);
  }

  hit(name: string): void {
    if (!this.armed.has(name)) return;
    this.logger?.fatal({ faultPoint: name }, "fault point reached: killing this process");
    this.logger?.flush();
    process.kill(process.pid, "SIGKILL");
  }
}
