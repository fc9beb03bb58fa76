export type MemberStatus = "up" | "suspect" | "down" | "drained";

/**
 * A node's status from the time of its last heartbeat: up while heartbeats are on time, suspect after
 * two missed intervals, down after the heartbeat timeout. Drained nodes stay drained.
 */
export function memberStatus(
  lastHeartbeatAtMs: number,
  nowMs: number,
  heartbeatIntervalMs: number,
  heartbeatTimeoutMs: number,
  drained = false,
): MemberStatus {
  if (drained) return "drained";
  const silenceMs = nowMs - lastHeartbeatAtMs;
  if (silenceMs > heartbeatTimeoutMs) return "down";
  if (silenceMs > 2 * heartbeatIntervalMs) return "suspect";
  return "up";
}
