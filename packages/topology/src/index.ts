export type {
  ControlStore,
  KvEntry,
  KvValue,
  CommitOp,
  CommitResult,
  Lease,
  Decision,
  DecisionParticipant,
  DecisionInput,
  RecordDecisionResult,
  DecisionRecord,
  DecisionLog,
} from "./control-store";
export { openControlStore, type ControlStoreOptions } from "./open-control-store";
export { TopologyError, type TopologyErrorCode } from "./topology-error";
export { limits as controlStoreLimits } from "./backend/sql-control-store";
export { Repository, protoCodec, jsonCodec, type Codec, type Versioned, type WriteResult } from "./repositories/repository";
export { NodeRegistry, type NodeInfo } from "./repositories/node-registry";
export { PolicyStore, type TablePolicy } from "./repositories/policy-store";
export { ShardMap, type ShardInfo, type EpochChangeResult } from "./repositories/shard-map";
export {
  SchemaStore,
  MigrationStore,
  replicaKey,
  type TableSchema,
  type AppliedSchema,
  type MigrationRecord,
  type MigrationTableChange,
  type ReplicaSchemaRecord,
} from "./repositories/schema-store";
export { GrantStore, privileges, type Privilege, type RoleGrants, type Membership, type Enforcement, type GrantSnapshot } from "./repositories/grant-store";
export { DecisionBatcher, type DecisionBatcherOptions } from "./repositories/decision-batcher";
