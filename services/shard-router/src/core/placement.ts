import { murmur3 } from "./murmur3";

export type NodeKind = "validator" | "miner";

export interface PlacementNode {
  nodeId: string;
  kind: NodeKind;
  /** Relative share of replicas this node should receive; must be > 0. */
  weight: number;
}

export interface PlacementPolicy {
  /** Fraction of eligible nodes holding each shard, in (0, 1]. */
  replicationFactor: number;
  validatorOnly: boolean;
  minValidatorCopies: number;
}

export class PlacementError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "PlacementError";
  }
}

/**
 * How many copies of each shard a policy asks for, given the nodes that may hold them:
 * max(ceil(replication_factor × eligible), min_validator_copies), never more than the eligible nodes.
 */
export function replicaCount(policy: PlacementPolicy, eligibleCount: number): number {
  const wanted = Math.max(Math.ceil(policy.replicationFactor * eligibleCount - 1e-9), policy.minValidatorCopies, 1);
  return Math.min(wanted, eligibleCount);
}

export function eligibleNodes(policy: PlacementPolicy, nodes: readonly PlacementNode[]): PlacementNode[] {
  return nodes.filter((node) => !policy.validatorOnly || node.kind === "validator");
}

/** Why a policy cannot be placed on these nodes, or null when it can. */
export function placementProblem(policy: PlacementPolicy, nodes: readonly PlacementNode[]): string | null {
  const eligible = eligibleNodes(policy, nodes);
  const validators = eligible.filter((node) => node.kind === "validator").length;
  if (eligible.length === 0) {
    return policy.validatorOnly ? "no validator node is up to hold the table (validator_only is set)" : "no node is up to hold the table";
  }
  if (validators < policy.minValidatorCopies) {
    return `min_validator_copies is ${policy.minValidatorCopies} but only ${validators} validator node${validators === 1 ? " is" : "s are"} up; lower it or add validators`;
  }
  return null;
}

/**
 * Weighted rendezvous (highest-random-weight) score of a node for a shard: -weight / ln(u) with u
 * uniform in (0,1) from a hash of (node, shard). Each node's chance of ranking first is proportional
 * to its weight, and adding or removing a node only moves the shards whose ranking it enters or leaves.
 */
export function rendezvousScore(shardId: string, node: PlacementNode): number {
  const hash = murmur3(new TextEncoder().encode(`${node.nodeId}\u0000${shardId}`), 0x5eed);
  const uniform = (hash + 0.5) / 2 ** 32;
  return -node.weight / Math.log(uniform);
}

/**
 * The nodes that should hold a shard, primary first. The primary is the best-ranked validator when
 * there is one (validators are the trusted tier); at least min_validator_copies validators are
 * included; the rest are the best-ranked eligible nodes.
 */
export function placeShard(shardId: string, policy: PlacementPolicy, nodes: readonly PlacementNode[]): string[] {
  const problem = placementProblem(policy, nodes);
  if (problem) throw new PlacementError(problem);
  for (const node of nodes) {
    if (!(node.weight > 0)) throw new PlacementError(`node ${node.nodeId} has weight ${node.weight}; weights must be positive`);
  }
  const eligible = eligibleNodes(policy, nodes);
  const ranked = eligible
    .map((node) => ({ node, score: rendezvousScore(shardId, node) }))
    .sort((a, b) => b.score - a.score || (a.node.nodeId < b.node.nodeId ? -1 : 1));
  const count = replicaCount(policy, eligible.length);
  const chosen: PlacementNode[] = [];
  for (const { node } of ranked) {
    if (chosen.length >= policy.minValidatorCopies) break;
    if (node.kind === "validator") chosen.push(node);
  }
  for (const { node } of ranked) {
    if (chosen.length >= count) break;
    if (!chosen.includes(node)) chosen.push(node);
  }
  // Order by rank so the primary is the best-ranked validator, then everything else by rank.
  const rank = new Map(ranked.map(({ node }, index) => [node.nodeId, index]));
  chosen.sort((a, b) => rank.get(a.nodeId)! - rank.get(b.nodeId)!);
  const primaryIndex = chosen.findIndex((node) => node.kind === "validator");
  if (primaryIndex > 0) chosen.unshift(...chosen.splice(primaryIndex, 1));
  return chosen.map((node) => node.nodeId);
}

/**
 * Placement weight of a registered node: validators weigh VALIDATOR_WEIGHT; miners weigh their
 * MINER_CAPACITY relative to the mean miner capacity, so an average miner weighs 1 like a default
 * validator and a miner twice as large receives about twice the replicas.
 */
export function placementWeight(
  node: { kind: NodeKind; validatorWeight: number; minerCapacityGb: number },
  meanMinerCapacityGb: number,
): number {
  if (node.kind === "validator") return node.validatorWeight;
  if (!(meanMinerCapacityGb > 0)) return 1;
  return node.minerCapacityGb / meanMinerCapacityGb;
}
