import { common, router } from "@mycelium/proto";
import { isMyceliumError, type ClientPool, type PromiseClient } from "@mycelium/rpc";

/** The router calls schema migrations need (planning, table schemas, shard copies, replica versions). */
export class SchemaClient {
  private readonly client: PromiseClient<typeof router.ShardRouterServiceService>;

  constructor(clients: ClientPool, routerAddress: string) {
    this.client = clients.service(router.ShardRouterServiceService, routerAddress);
  }

  async planMigrations(migrations: ReadonlyArray<{ id: string; statements: readonly string[] }>): Promise<router.MigrationPlan[]> {
    const response = await this.client.planMigrations(
      router.PlanMigrationsRequest.create({ migrations: migrations.map((m) => ({ id: m.id, statements: [...m.statements] })) }),
      { idempotent: true, deadlineMs: 30_000 },
    );
    return response.migrations;
  }

  /** The table's schema version and DDL history as the router has it (version 0, no DDL: no table). */
  async tableSchema(table: string): Promise<{ version: number; ddl: string[] }> {
    try {
      const response = await this.client.getTableSchema(router.GetTableSchemaRequest.create({ table }), { idempotent: true, deadlineMs: 10_000 });
      return { version: response.schemaVersion, ddl: response.ddl };
    } catch (error) {
      if (isMyceliumError(error) && error.code === "NOT_FOUND") return { version: 0, ddl: [] };
      throw error;
    }
  }

  /** Records the table's new schema after `statements`; returns the version the router assigned. */
  async recordSchema(table: string, statements: readonly string[]): Promise<number> {
    const response = await this.client.recordSchema(router.RecordSchemaRequest.create({ table, ddl: [...statements] }), { deadlineMs: 10_000 });
    return response.schemaVersion;
  }

  async recordReplicaSchemas(replicas: router.ReplicaSchema[]): Promise<void> {
    if (replicas.length === 0) return;
    await this.client.recordReplicaSchemas(router.RecordReplicaSchemasRequest.create({ replicas }), { idempotent: true, deadlineMs: 10_000 });
  }

  /** Shards of one table, or of every table ("" ). A table without a policy has none. */
  async shards(table = ""): Promise<common.ShardInfo[]> {
    try {
      const response = await this.client.listShards(router.ListShardsRequest.create({ table }), { idempotent: true, deadlineMs: 10_000 });
      return response.shards.filter((shard) => shard.state !== common.ShardState.SHARD_STATE_RETIRED);
    } catch (error) {
      if (isMyceliumError(error) && error.code === "NOT_FOUND") return [];
      throw error;
    }
  }

  async nodeAddresses(): Promise<Map<string, string>> {
    const response = await this.client.listNodes(router.ListNodesRequest.create({}), { idempotent: true, deadlineMs: 10_000 });
    return new Map(response.nodes.map((node) => [node.nodeId, node.address]));
  }
}
