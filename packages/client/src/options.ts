import type { TlsPaths } from "@mycelium/tls";

export interface ClientOptions {
  /** host:port of a coordinator. */
  coordinatorAddress: string;
  /** host:port of a shard-router; needed only for administration (policies, nodes, shards). */
  routerAddress?: string;
  /** This client's certificate (role `client`, or `admin` for administration), key, and the cluster CA. */
  tls: TlsPaths;
  networkId: string;
  /** @default "1.0.0" */
  protocolVersion?: string;
  /** Deadline of each call. @default 30000 */
  deadlineMs?: number;
  /** @default true */
  verifyHostname?: boolean;
  /**
   * Times `transaction()` runs its function again when the cluster aborts the transaction
   * (lock timeout, participant failure). @default 3
   */
  maxTransactionAttempts?: number;
}

export const defaultProtocolVersion = "1.0.0";
