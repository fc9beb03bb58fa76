import * as path from "node:path";

export * as common from "./common";
export * as router from "./gen/mycelium/router/v1/shard_router_service";
export * as nodeagent from "./gen/mycelium/nodeagent/v1/node_agent_service";
export * as coordinator from "./coordinator";
export * as replicator from "./gen/mycelium/replicator/v1/replicator_service";
export { toValue, fromValue, toRow, fromRow, type SqlValue } from "./values";

/** The compiled FileDescriptorSet of every Mycelium proto, for server reflection. */
export const descriptorSetPath = path.join(__dirname, "..", "descriptor.binpb");
