import { common } from "@mycelium/proto";
import type { ControlStore } from "../control-store";
import { protoCodec, Repository, type WriteResult } from "./repository";

export type TablePolicy = common.TablePolicy;

/** Table policies: `policies/<table>` → common.TablePolicy, whose `version` field is the control-store version. */
export class PolicyStore {
  private readonly records: Repository<TablePolicy>;

  constructor(store: ControlStore) {
    this.records = new Repository(store, "policies/", protoCodec(common.TablePolicy));
  }

  async get(table: string): Promise<TablePolicy | null> {
    const found = await this.records.get(table);
    return found ? { ...found.value, version: found.version } : null;
  }

  async list(): Promise<TablePolicy[]> {
    return (await this.records.list()).map((found) => ({ ...found.value, version: found.version }));
  }

  /** Creates (expectedVersion 0) or replaces (expectedVersion = policy.version read earlier) a policy. */
  put(policy: TablePolicy, expectedVersion?: number): Promise<WriteResult> {
    return this.records.put(policy.table, { ...policy, version: 0 }, expectedVersion);
  }

  remove(table: string, expectedVersion?: number): Promise<WriteResult> {
    return this.records.delete(table, expectedVersion);
  }
}
