import type { Counter, Gauge, Metrics } from "@mycelium/telemetry";

export interface ReplicationMetrics {
  shipped: Counter;
  bytes: Counter;
  lagEntries: Gauge<"shard" | "node">;
  lagSeconds: Gauge<"shard" | "node">;
  failovers: Counter;
  conflicts: Counter;
  reapplied: Counter;
  checksumMismatches: Counter;
  resyncs: Counter;
  owned: Gauge;
}

export function createReplicationMetrics(m: Metrics): ReplicationMetrics {
  return {
    shipped: m.counter({ name: "mycelium_replication_changes_shipped_total", help: "Change-log entries read from primaries and shipped to secondaries." }),
    bytes: m.counter({ name: "mycelium_replication_bytes_shipped_total", help: "Encoded change-log bytes shipped." }),
    lagEntries: m.gauge({ name: "mycelium_replication_lag_entries", help: "Entries a secondary is behind its primary.", labelNames: ["shard", "node"] as const }),
    lagSeconds: m.gauge({ name: "mycelium_replication_lag_seconds", help: "Age of the oldest entry a secondary has not applied.", labelNames: ["shard", "node"] as const }),
    failovers: m.counter({ name: "mycelium_replication_failovers_total", help: "Primaries replaced after their lease lapsed." }),
    conflicts: m.counter({ name: "mycelium_replication_conflicts_total", help: "Divergent transactions of a returning primary written to the conflict journal." }),
    reapplied: m.counter({ name: "mycelium_replication_reapplied_total", help: "Divergent transactions of a returning primary re-applied on the new primary." }),
    checksumMismatches: m.counter({ name: "mycelium_replication_checksum_mismatches_total", help: "Copies found to disagree with their primary (and resynced)." }),
    resyncs: m.counter({ name: "mycelium_replication_resyncs_total", help: "Copies rebuilt from a snapshot of the primary." }),
    owned: m.gauge({ name: "mycelium_replication_shards_owned", help: "Shards this replicator currently drives." }),
  };
}
