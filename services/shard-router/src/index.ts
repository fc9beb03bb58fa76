export { startShardRouter, type RunningShardRouter, type ShardRouterStartOptions } from "./service";
export { ShardRouter } from "./shard-router";
export { planStatement, type RoutingSnapshot } from "./core/route-planner";
export { TableLayout, initialKeyRanges, type TableSchema } from "./core/table-layout";
export { placeShard, replicaCount, placementProblem, type PlacementNode, type PlacementPolicy } from "./core/placement";
export { hashKey, evenHashRanges } from "./core/key-hash";
export { registerShardFunction, type ShardFunction } from "./core/shard-functions";
export { shardRouterAuthorization } from "./rpc/authorization";
