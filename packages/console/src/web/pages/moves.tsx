import { TableHead } from "../table-head";
import type { ConsoleSnapshot } from "../../core/snapshot";
import { time } from "../format";

export function MovesPage({ snapshot }: { snapshot: ConsoleSnapshot }) {
  const { moves } = snapshot;
  if (!moves.available) {
    return (
      <section>
        <p class="notice" data-testid="moves-unavailable">
          {moves.reason}
        </p>
      </section>
    );
  }
  return (
    <section>
      <table class="grid" data-testid="moves-table">
        <TableHead columns={["move", "shard", "kind", "from", "to", "phase", "progress", "started"]} />
        <tbody>
          {moves.moves.map((m) => (
            <tr key={m.moveId}>
              <td class="mono">{m.moveId}</td>
              <td class="mono">{m.shardId}</td>
              <td>{m.kind}</td>
              <td>{m.fromNodeId.slice(0, 8)}</td>
              <td>{m.toNodeId.slice(0, 8)}</td>
              <td>{m.phase}</td>
              <td>
                <progress max={1} value={m.progress} /> {Math.round(m.progress * 100)}%
              </td>
              <td>{time(m.startedAtMs)}</td>
            </tr>
          ))}
        </tbody>
      </table>
      {moves.moves.length === 0 ? <p class="muted">No shard is moving.</p> : null}
    </section>
  );
}
