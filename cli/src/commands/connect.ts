import type { Command } from "commander";
import { MyceliumClient } from "@mycelium/client";
import { ClusterAdmin } from "@mycelium/console";
import { defaultDataDir, resolveConnection, type ConnectionFlags } from "../local-cluster/cluster-info";

/** The flags every command that talks to a cluster accepts. */
export function withConnectionFlags(command: Command): Command {
  return command
    .option("--data-dir <dir>", "data directory of a local cluster started with `mycelium up`", defaultDataDir)
    .option("--coordinator <host:port>", "coordinator address (instead of the data directory's)")
    .option("--router <host:port>", "shard-router address (instead of the data directory's)")
    .option("--replicator <host:port>", "replicator address (instead of the data directory's)")
    .option("--cert <path>", "client certificate (PEM)")
    .option("--key <path>", "client private key (PEM)")
    .option("--ca <path>", "cluster CA certificate (PEM)")
    .option("--network-id <id>", "network id to announce");
}

export function connect(flags: ConnectionFlags, role: "client" | "admin"): MyceliumClient {
  const connection = resolveConnection(flags, role);
  const client = new MyceliumClient({
    coordinatorAddress: connection.coordinatorAddress,
    ...(connection.routerAddress ? { routerAddress: connection.routerAddress } : {}),
    tls: connection.tls,
    networkId: connection.networkId,
    protocolVersion: connection.protocolVersion,
  });
  replicatorAddresses.set(client, connection.replicatorAddress);
  return client;
}

const replicatorAddresses = new WeakMap<MyceliumClient, string>();

/** The admin calls (shared with the dashboard, so both show the same), over the client's channels. */
export function adminOf(client: MyceliumClient): ClusterAdmin {
  return new ClusterAdmin(client, replicatorAddresses.get(client) ?? "");
}
