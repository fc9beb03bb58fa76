export * from "./gen/mycelium/common/v1/value";
export * from "./gen/mycelium/common/v1/node";
export * from "./gen/mycelium/common/v1/policy";
export * from "./gen/mycelium/common/v1/shard";
