import { TableHead } from "../table-head";
import type { ConsoleSnapshot } from "../../core/snapshot";
import { time } from "../format";

export function ConflictsPage({ snapshot }: { snapshot: ConsoleSnapshot }) {
  const pending = snapshot.conflicts.filter((c) => c.status === "pending").length;
  return (
    <section>
      <p>
        Transactions a returning primary held that clashed with what its replacement did meanwhile. They stay here until an operator applies or discards
        them (`mycelium conflicts resolve &lt;id&gt; apply|discard`). <b>{pending}</b> pending.
      </p>
      <table class="grid" data-testid="conflicts-table">
        <TableHead columns={["conflict", "shard", "from node", "status", "detected", "why"]} />
        <tbody>
          {snapshot.conflicts.map((c) => (
            <tr key={c.conflictId} data-conflict-id={c.conflictId}>
              <td class="mono">{c.conflictId}</td>
              <td class="mono">{c.shardId}</td>
              <td>{c.originName}</td>
              <td>
                <span class={`badge conflict-${c.status}`}>{c.status}</span>
              </td>
              <td>{time(c.detectedAtMs)}</td>
              <td>{c.reasons.join("; ")}</td>
            </tr>
          ))}
        </tbody>
      </table>
      {snapshot.conflicts.length === 0 ? <p class="muted">The conflict journal is empty.</p> : null}
    </section>
  );
}
