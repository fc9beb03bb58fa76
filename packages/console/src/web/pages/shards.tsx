import { TableHead } from "../table-head";
import type { ConsoleSnapshot, ShardView, TableView } from "../../core/snapshot";
import { TimeChart } from "../chart";
import { bytes, count, ms } from "../format";

export function ShardsPage({ snapshot }: { snapshot: ConsoleSnapshot }) {
  return (
    <section>
      <TimeChart title="Replication lag per shard (the shards with the most lag)" data={snapshot.charts.lag} unit="ms" testId="chart-lag" />
      {snapshot.tables.length === 0 ? <p class="muted">No table has a policy yet: `mycelium policy set …`, then CREATE TABLE.</p> : null}
      {snapshot.tables.map((table) => (
        <TableSection key={table.table} table={table} />
      ))}
    </section>
  );
}

function TableSection({ table }: { table: TableView }) {
  return (
    <div class="table-section" data-table={table.table}>
      <h2>
        {table.table} <span class="muted">{table.shards.length} shards</span>
      </h2>
      <p class="policy">
        shard keys <b>{table.shardKeys.join(", ") || "?"}</b> · {table.shardFunction} · replication factor {count(table.replicationFactor)} · min validator copies{" "}
        {count(table.minValidatorCopies)}
        {table.validatorOnly ? " · validators only" : ""}
        {table.syncReplicas > 0 ? ` · ${table.syncReplicas} synchronous` : " · asynchronous"}
        {table.colocationGroup ? ` · group ${table.colocationGroup}` : ""} · policy v{table.version}
      </p>
      <table class="grid" data-testid={`shards-${table.table}`}>
        <TableHead columns={["shard", "state", "epoch", "primary", "copies (lag)", "lag", "size", "head lsn", ["checksum", "each secondary's checksum compared with the primary's at the same position"], "keys", "failovers"]} />
        <tbody>
          {table.shards.map((shard) => (
            <ShardRow key={shard.shardId} shard={shard} />
          ))}
        </tbody>
      </table>
    </div>
  );
}

function ShardRow({ shard }: { shard: ShardView }) {
  return (
    <tr data-shard-id={shard.shardId} data-primary={shard.primaryNodeId} data-epoch={shard.epoch} data-state={shard.state}>
      <td class="mono">{shard.shardId}</td>
      <td>
        <span class={`badge state-${shard.state}`}>{shard.state}</span>
      </td>
      <td>{shard.epoch}</td>
      <td>
        <strong>{shard.primaryName}</strong>
      </td>
      <td>
        {shard.replicas
          .filter((r) => !r.primary)
          .map((r) => (
            <span key={r.nodeId} class="replica" title={`${r.nodeId}: ${r.state}, applied lsn ${r.appliedLsn}`}>
              {r.nodeName} {r.lagEntries < 0 ? "(?)" : `(${r.lagEntries} · ${ms(r.lagMs)})`}
            </span>
          ))}
      </td>
      <td class={shard.lagMsMax !== null && shard.lagMsMax > 1000 ? "warn" : ""}>{ms(shard.lagMsMax)}</td>
      <td>{bytes(shard.sizeBytes)}</td>
      <td>{count(shard.headLsn)}</td>
      <td>
        <span class={`badge checksum-${shard.checksum}`}>{shard.checksum}</span>
      </td>
      <td class="mono muted">{shard.keyRange}</td>
      <td>{shard.failovers}</td>
    </tr>
  );
}
