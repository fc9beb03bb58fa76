import { nodeagent } from "@mycelium/proto";
import type { ServiceHandlers } from "@mycelium/rpc";
import { toResultSet, type NodeAgent } from "../node-agent";
import { replicationHandlers } from "./replication-handlers";

export function nodeAgentHandlers(core: NodeAgent, isolated: () => boolean = () => false): ServiceHandlers<typeof nodeagent.NodeAgentServiceService> {
  return {
    ...replicationHandlers(core, isolated),
    async execute(request) {
      const results = await core.execute(request);
      return nodeagent.ExecuteResponse.create({ results: results.map(toResultSet) });
    },
    prepare: (request) => core.prepare(request.txId, request.shard),
    async commit(request) {
      await core.commit(request.txId, request.shard);
      return nodeagent.CommitResponse.create({});
    },
    async abort(request) {
      await core.abort(request.txId, request.shard);
      return nodeagent.AbortResponse.create({});
    },
    async applySchema(request) {
      return (await core.applySchema(request)) ?? nodeagent.ApplySchemaResponse.create({});
    },
    getStatus: () => core.status(),
    async listPrepared() {
      return nodeagent.ListPreparedResponse.create({ transactions: await core.listPrepared() });
    },
  };
}
