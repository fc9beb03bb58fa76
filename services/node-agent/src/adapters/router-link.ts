import { common, router } from "@mycelium/proto";
import { isMyceliumError, type ClientPool, type PromiseClient } from "@mycelium/rpc";
import { signRegistration } from "@mycelium/tls";
import type { Logger } from "@mycelium/telemetry";

export interface NodeIdentity {
  nodeId: string;
  nodeType: "validator" | "miner";
  publicKey: string;
  privateKey: string;
  validatorWeight: number;
  minerCapacityGb: number;
  networkId: string;
  protocolVersion: string;
}

/** The node-agent's conversation with the shard-router: signed registration and heartbeats. */
export class RouterLink {
  private readonly client: PromiseClient<typeof router.ShardRouterServiceService>;

  constructor(
    clients: ClientPool,
    routerAddress: string,
    private readonly identity: NodeIdentity,
    private readonly log: Logger,
  ) {
    this.client = clients.service(router.ShardRouterServiceService, routerAddress);
  }

  async register(address: string): Promise<router.RegisterNodeResponse> {
    const timestampMs = Date.now();
    const { identity } = this;
    const signature = signRegistration(
      {
        nodeId: identity.nodeId,
        nodeType: identity.nodeType,
        address,
        publicKey: identity.publicKey,
        validatorWeight: identity.validatorWeight,
        minerCapacityGb: identity.minerCapacityGb,
        networkId: identity.networkId,
        timestampMs,
      },
      identity.privateKey,
    );
    return this.client.registerNode(
      router.RegisterNodeRequest.create({
        nodeId: identity.nodeId,
        nodeType: identity.nodeType === "validator" ? common.NodeType.NODE_TYPE_VALIDATOR : common.NodeType.NODE_TYPE_MINER,
        address,
        publicKey: identity.publicKey,
        validatorWeight: identity.validatorWeight,
        minerCapacityGb: identity.minerCapacityGb,
        protocolVersion: identity.protocolVersion,
        timestampMs,
        signature,
      }),
      { idempotent: true, deadlineMs: 5000 },
    );
  }

  /** One heartbeat; re-registers when the router has forgotten the node. */
  async heartbeat(storedBytes: number, address: string, deadlineMs: number, replicas: common.ShardReplica[] = []): Promise<router.HeartbeatResponse> {
    const request = router.HeartbeatRequest.create({ nodeId: this.identity.nodeId, storedBytes, replicas });
    try {
      return await this.client.heartbeat(request, { idempotent: true, deadlineMs });
    } catch (error) {
      if (isMyceliumError(error) && error.code === "NOT_FOUND") {
        this.log.warn("router does not know this node; registering again");
        await this.register(address);
        return this.client.heartbeat(request, { idempotent: true, deadlineMs });
      }
      throw error;
    }
  }
}
