import { TableHead } from "../table-head";
import type { ConsoleSnapshot } from "../../core/snapshot";
import { age, bytes, count, rate } from "../format";

export function NodesPage({ snapshot }: { snapshot: ConsoleSnapshot }) {
  const up = snapshot.nodes.filter((n) => n.status === "up").length;
  const shards = snapshot.tables.reduce((sum, t) => sum + t.shards.length, 0);
  return (
    <section>
      <div class="cards">
        <Card label="nodes up" value={`${up} / ${snapshot.nodes.length}`} warn={up < snapshot.nodes.length} />
        <Card label="shards" value={String(shards)} />
        <Card label="committed/s" value={rate(snapshot.transactions.committedPerSecond)} />
        <Card label="in doubt" value={String(snapshot.transactions.inDoubt.length)} warn={snapshot.transactions.inDoubt.length > 0} />
      </div>
      <table class="grid" data-testid="nodes-table">
        <TableHead columns={["node", "type", "status", "address", ["heartbeat", "time since the router last heard a heartbeat"], ["shards", "shard copies on the node (primaries among them)"], "stored", ["open tx", "distributed transactions open on the node"], ["prepared", "transactions prepared and waiting for their decision"], "statements/s", ["weight", "validator weight or miner capacity (GB)"]]} />
        <tbody>
          {snapshot.nodes.map((node) => (
            <tr key={node.nodeId} data-node-id={node.nodeId} data-node-name={node.name} data-status={node.status}>
              <td>
                <strong>{node.name}</strong> <span class="muted mono" title={node.nodeId}>{node.nodeId.slice(0, 12)}</span>
              </td>
              <td>{node.type}</td>
              <td>
                <span class={`badge status-${node.status}`}>{node.status}</span>
              </td>
              <td class="mono">{node.address}</td>
              <td class={node.heartbeatAgeMs > 5000 ? "warn" : ""}>{age(node.heartbeatAgeMs)}</td>
              <td>
                {node.shardCount} <span class="muted">({node.primaryCount} primary)</span>
              </td>
              <td>{bytes(node.storedBytes)}</td>
              <td>{count(node.openTransactions)}</td>
              <td class={node.preparedTransactions ? "warn" : ""}>{count(node.preparedTransactions)}</td>
              <td>{rate(node.statementsPerSecond)}</td>
              <td>{node.weight}</td>
            </tr>
          ))}
        </tbody>
      </table>
      {snapshot.nodes.length === 0 ? <p class="muted">No node has registered with the router.</p> : null}
    </section>
  );
}

export function Card(props: { label: string; value: string; warn?: boolean }) {
  return (
    <div class={`card${props.warn ? " card-warn" : ""}`}>
      <div class="card-value">{props.value}</div>
      <div class="card-label">{props.label}</div>
    </div>
  );
}
