import type { MovesView } from "./snapshot";

/**
 * Where the moves page gets its rows. The rebalancer (a later issue) will provide one that reads its
 * moves and their progress; until then the page says so instead of showing an empty table.
 */
export interface MovesSource {
  read(): Promise<MovesView>;
}

export const rebalancerNotBuilt: MovesSource = {
  read: async () => ({
    available: false,
    reason: "rebalancing is not available yet: shards stay where they were placed when their table was created (docs/operations.md, Rebalancing)",
    moves: [],
  }),
};
