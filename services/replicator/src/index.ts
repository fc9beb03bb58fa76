export { startReplicator, type RunningReplicator, type ReplicatorStartOptions } from "./service";
export { replicatorAuthorization } from "./rpc/authorization";
