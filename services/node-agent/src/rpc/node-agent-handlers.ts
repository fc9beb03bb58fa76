import { nodeagent } from "@mycelium/proto";
import type { ServiceHandlers } from "@mycelium/rpc";
import { annotateActiveSpan, spanAttributes } from "@mycelium/telemetry";
import { toResultSet, type NodeAgent } from "../node-agent";
import { replicationHandlers } from "./replication-handlers";

export function nodeAgentHandlers(core: NodeAgent, isolated: () => boolean = () => false): ServiceHandlers<typeof nodeagent.NodeAgentServiceService> {
  return {
    ...replicationHandlers(core, isolated),
    async execute(request) {
      tag(request.txId, request.shard?.shardId);
      const results = await core.execute(request);
      return nodeagent.ExecuteResponse.create({ results: results.map(toResultSet) });
    },
    prepare: (request) => {
      tag(request.txId, request.shard?.shardId);
      return core.prepare(request.txId, request.shard);
    },
    async commit(request) {
      tag(request.txId, request.shard?.shardId);
      await core.commit(request.txId, request.shard);
      return nodeagent.CommitResponse.create({});
    },
    async abort(request) {
      tag(request.txId, request.shard?.shardId);
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

/** Which transaction and shard a participant's span belongs to (`mycelium traces` shows participants). */
function tag(txId: string, shardId: string | undefined): void {
  annotateActiveSpan({ ...(txId ? { [spanAttributes.txId]: txId } : {}), ...(shardId ? { [spanAttributes.shardId]: shardId } : {}) });
}
