import fc from "fast-check";
import { evenHashRanges, hashKey, hashSpaceEnd } from "../src/core/key-hash";
import { murmur3 } from "../src/core/murmur3";
import { placeShard, placementProblem, replicaCount, type PlacementNode, type PlacementPolicy } from "../src/core/placement";

const text = (s: string) => new TextEncoder().encode(s);

describe("murmur3", () => {
  it.each([
    ["", 0, 0],
    ["", 1, 0x514e28b7],
    ["hello", 0, 0x248bfa47],
    ["Hello, world!", 1234, 0xfaf6cdb3],
    ["The quick brown fox jumps over the lazy dog", 0, 0x2e4ff723],
  ])("matches the reference for %j seed %d", (input, seed, expected) => {
    expect(murmur3(text(input), seed)).toBe(expected);
  });
});

describe("hashKey", () => {
  it("hashes an integer alike whatever its JavaScript type", () => {
    expect(hashKey([42])).toBe(hashKey([42n]));
    expect(hashKey([true])).toBe(hashKey([1]));
  });
  it("keeps text and integers apart", () => {
    expect(hashKey(["42"])).not.toBe(hashKey([42]));
  });
  it("separates columns of a composite key", () => {
    expect(hashKey(["ab", "c"])).not.toBe(hashKey(["a", "bc"]));
  });
});

describe("evenHashRanges", () => {
  it("covers the hash space without gaps or overlaps", () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 256 }), (count) => {
        const ranges = evenHashRanges(count);
        expect(ranges).toHaveLength(count);
        expect(ranges[0]!.start).toBe(0);
        expect(ranges[count - 1]!.end).toBe(hashSpaceEnd);
        for (let i = 1; i < count; i++) expect(ranges[i]!.start).toBe(ranges[i - 1]!.end);
        for (const range of ranges) expect(range.end).toBeGreaterThan(range.start);
      }),
    );
  });
});

const nodeArbitrary = fc.record({
  kind: fc.constantFrom<"validator" | "miner">("validator", "miner"),
  weight: fc.double({ min: 0.1, max: 10, noNaN: true }),
});

const policyArbitrary = fc.record({
  replicationFactor: fc.double({ min: 0.01, max: 1, noNaN: true }),
  validatorOnly: fc.boolean(),
  minValidatorCopies: fc.integer({ min: 0, max: 4 }),
});

describe("placeShard", () => {
  it("always honours the replica count, the validator minimum, validator_only, and puts a validator first", () => {
    fc.assert(
      fc.property(fc.array(nodeArbitrary, { minLength: 1, maxLength: 20 }), policyArbitrary, fc.string(), (specs, policy, shardId) => {
        const nodes: PlacementNode[] = specs.map((spec, i) => ({ nodeId: `n${i}`, ...spec }));
        const problem = placementProblem(policy, nodes);
        if (problem) {
          expect(() => placeShard(shardId, policy, nodes)).toThrow(problem);
          return;
        }
        const placed = placeShard(shardId, policy, nodes);
        const eligible = nodes.filter((n) => !policy.validatorOnly || n.kind === "validator");
        const byId = new Map(nodes.map((n) => [n.nodeId, n]));
        expect(new Set(placed).size).toBe(placed.length);
        expect(placed.length).toBe(Math.min(eligible.length, Math.max(Math.ceil(policy.replicationFactor * eligible.length - 1e-9), policy.minValidatorCopies, 1)));
        const validators = placed.filter((id) => byId.get(id)!.kind === "validator").length;
        expect(validators).toBeGreaterThanOrEqual(policy.minValidatorCopies);
        if (policy.validatorOnly) expect(validators).toBe(placed.length);
        if (validators > 0) expect(byId.get(placed[0]!)!.kind).toBe("validator");
      }),
    );
  });

  it("is deterministic", () => {
    const nodes: PlacementNode[] = [1, 2, 3, 4, 5].map((i) => ({ nodeId: `n${i}`, kind: "validator", weight: 1 }));
    const policy: PlacementPolicy = { replicationFactor: 0.5, validatorOnly: false, minValidatorCopies: 2 };
    expect(placeShard("users-0003", policy, nodes)).toEqual(placeShard("users-0003", policy, [...nodes].reverse()));
  });

  it("moves about 1/11 of replicas when an 11th node joins 10", () => {
    const nodes: PlacementNode[] = Array.from({ length: 10 }, (_, i) => ({ nodeId: `node-${i}`, kind: "validator", weight: 1 }));
    const grown = [...nodes, { nodeId: "node-new", kind: "validator" as const, weight: 1 }];
    // ceil(0.25 × 10) = ceil(0.25 × 11) = 3 copies, so every change is a move, not a new copy.
    const policy: PlacementPolicy = { replicationFactor: 0.25, validatorOnly: false, minValidatorCopies: 1 };
    let replicas = 0;
    let moved = 0;
    for (let shard = 0; shard < 2000; shard++) {
      const before = placeShard(`t-${shard}`, policy, nodes);
      const after = new Set(placeShard(`t-${shard}`, policy, grown));
      replicas += before.length;
      moved += before.filter((id) => !after.has(id)).length;
    }
    // Ideal is 3/11 × 1/3 = 1/11 of replicas (the new node's fair share); allow sampling noise, forbid reshuffles.
    const fraction = moved / replicas;
    expect(fraction).toBeGreaterThan(0.06);
    expect(fraction).toBeLessThan(0.11);
  });

  it("gives replicas in proportion to weight", () => {
    const nodes: PlacementNode[] = [
      { nodeId: "light", kind: "validator", weight: 1 },
      { nodeId: "heavy", kind: "validator", weight: 3 },
    ];
    const policy: PlacementPolicy = { replicationFactor: 0.5, validatorOnly: false, minValidatorCopies: 1 };
    let heavy = 0;
    for (let shard = 0; shard < 4000; shard++) if (placeShard(`s${shard}`, policy, nodes)[0] === "heavy") heavy++;
    expect(heavy / 4000).toBeGreaterThan(0.7);
    expect(heavy / 4000).toBeLessThan(0.8);
  });

  it("counts replicas from the replication factor and the validator minimum", () => {
    const policy = (replicationFactor: number, minValidatorCopies: number): PlacementPolicy => ({ replicationFactor, validatorOnly: false, minValidatorCopies });
    expect(replicaCount(policy(0.5, 2), 3)).toBe(2);
    expect(replicaCount(policy(0.5, 1), 4)).toBe(2);
    expect(replicaCount(policy(1, 1), 7)).toBe(7);
    expect(replicaCount(policy(0.1, 3), 5)).toBe(3);
    expect(replicaCount(policy(0.5, 0), 1)).toBe(1);
  });
});
