import type { Logger } from "@mycelium/telemetry";

/**
 * Crash points for recovery tests (MYCELIUM_FAULT_POINTS): the process kills itself with SIGKILL —
 * no cleanup, no flush beyond what is already durable — the first time it reaches a named point.
 * With no points configured, `hit` costs one Set lookup.
 */
export class FaultPoints {
  private readonly armedPoints: Set<string>;

  constructor(names: readonly string[], private readonly logger?: Logger) {
    this.armedPoints = new Set(names);
  }

  static none(): FaultPoints {
    return new FaultPoints([]);
  }

  /** Whether a point is armed (for faults that change behaviour rather than crash). */
  armed(name: string): boolean {
    return this.armedPoints.has(name);
  }

  hit(name: string): void {
    if (!this.armedPoints.has(name)) return;
    this.logger?.fatal({ faultPoint: name }, "fault point reached: killing this process");
    this.logger?.flush();
    process.kill(process.pid, "SIGKILL");
  }
}
