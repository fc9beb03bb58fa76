export interface Candidate {
  nodeId: string;
  kind: "validator" | "miner";
  /** Highest change-log position the replica holds; null when it could not be asked. */
  appliedLsn: number | null;
}

/**
 * The replica to promote when a primary is lost: the most up-to-date reachable one (it loses the
 * fewest acknowledged asynchronous writes), validators preferred among equals, then by node id so every
 * replicator picks the same. Null when no replica answered.
 */
export function choosePromotion(candidates: readonly Candidate[], oldPrimary: string): Candidate | null {
  const reachable = candidates.filter((c) => c.nodeId !== oldPrimary && c.appliedLsn !== null);
  if (reachable.length === 0) return null;
  return [...reachable].sort(
    (a, b) => b.appliedLsn! - a.appliedLsn! || (a.kind === b.kind ? 0 : a.kind === "validator" ? -1 : 1) || (a.nodeId < b.nodeId ? -1 : 1),
  )[0]!;
}

/** The replica list after a promotion: the new primary first, the old one kept as a secondary. */
export function replicasAfterPromotion(replicas: readonly string[], newPrimary: string): string[] {
  return [newPrimary, ...replicas.filter((id) => id !== newPrimary)];
}
