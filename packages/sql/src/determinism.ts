import type { Analysis } from "./types";
import { SqlError } from "./errors";

/**
 * Throws NONDETERMINISTIC when a write uses a nondeterministic function or value: replicas and redo after a
 * crash re-execute statements, so a write must produce the same rows everywhere. Reads pass.
 */
export function assertDeterministic(analysis: Analysis): void {
  if (!analysis.isWrite || analysis.nondeterministic.length === 0) return;
  throw new SqlError(
    "NONDETERMINISTIC",
    `nondeterministic ${analysis.nondeterministic.length === 1 ? "function" : "functions"} ${analysis.nondeterministic.join(", ")} ` +
      `cannot be used in a replicated write: compute the value in the client and pass it as a ? parameter`,
  );
}
