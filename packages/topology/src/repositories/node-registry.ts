import { common } from "@mycelium/proto";
import type { ControlStore } from "../control-store";
import { protoCodec, Repository, type Versioned, type WriteResult } from "./repository";

export type NodeInfo = common.NodeInfo;

/** Node membership: `nodes/<nodeId>` → common.NodeInfo. */
export class NodeRegistry {
  private readonly records: Repository<NodeInfo>;

  constructor(store: ControlStore) {
    this.records = new Repository(store, "nodes/", protoCodec(common.NodeInfo));
  }

  get(nodeId: string): Promise<Versioned<NodeInfo> | null> {
    return this.records.get(nodeId);
  }

  list(): Promise<Array<Versioned<NodeInfo>>> {
    return this.records.list();
  }

  /** Registers or re-registers a node (compare-and-set when expectedVersion is given). */
  register(node: NodeInfo, expectedVersion?: number): Promise<WriteResult> {
    return this.records.put(node.nodeId, node, expectedVersion);
  }

  /** Records a heartbeat on the stored record; null when the node is not registered. */
  heartbeat(
    nodeId: string,
    beat: { atMs: number; storedBytes?: number; shardCount?: number; status?: common.NodeStatus },
  ): Promise<Versioned<NodeInfo> | null> {
    return this.records.update(nodeId, (current) =>
      current
        ? {
            ...current.value,
            lastHeartbeatAtMs: Math.max(current.value.lastHeartbeatAtMs, beat.atMs),
            ...(beat.storedBytes === undefined ? {} : { storedBytes: beat.storedBytes }),
            ...(beat.shardCount === undefined ? {} : { shardCount: beat.shardCount }),
            ...(beat.status === undefined ? {} : { status: beat.status }),
          }
        : undefined,
    );
  }

  update(nodeId: string, change: (current: Versioned<NodeInfo> | null) => NodeInfo | null | undefined): Promise<Versioned<NodeInfo> | null> {
    return this.records.update(nodeId, change);
  }

  remove(nodeId: string, expectedVersion?: number): Promise<WriteResult> {
    return this.records.delete(nodeId, expectedVersion);
  }
}
