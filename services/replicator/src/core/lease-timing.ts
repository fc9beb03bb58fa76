/**
 * Lease arithmetic, the one place where safety depends on time.
 *
 * The replicator renews a primary's lease every heartbeat interval with a duration; the primary counts
 * the duration from when it *receives* the renewal, on its own clock, and refuses writes after it. The
 * replicator counts from when it *sent* the last renewal that was acknowledged. Receipt is later than
 * sending by the one-way delay, so the primary's lease ends at most `delay` after the replicator thinks
 * it started + duration. Failing over only after `heartbeatTimeout` since that send is safe as long as
 *   duration + maxOneWayDelay < heartbeatTimeout,
 * which `leaseDurationMs` guarantees for delays below one heartbeat interval (clock *rates* are assumed
 * to agree closely; clock *offsets* do not matter, no absolute time crosses the wire).
 */
export function leaseDurationMs(heartbeatIntervalMs: number, heartbeatTimeoutMs: number): number {
  if (!(heartbeatTimeoutMs > heartbeatIntervalMs)) throw new Error("the heartbeat timeout must exceed the heartbeat interval");
  return heartbeatTimeoutMs - heartbeatIntervalMs;
}

/** Whether the primary's lease has certainly lapsed, so another replica may be promoted. */
export function leaseCertainlyExpired(lastAcknowledgedSendAtMs: number, nowMs: number, heartbeatTimeoutMs: number): boolean {
  return nowMs - lastAcknowledgedSendAtMs > heartbeatTimeoutMs;
}
