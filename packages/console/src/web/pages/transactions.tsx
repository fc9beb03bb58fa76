import { TableHead } from "../table-head";
import { useState } from "preact/hooks";
import type { ConsoleSnapshot, InDoubtView, SessionView } from "../../core/snapshot";
import { resolveInDoubt } from "../api";
import { TimeChart } from "../chart";
import { age, ms, rate, time } from "../format";
import { Card } from "./nodes";

export function TransactionsPage({ snapshot, session }: { snapshot: ConsoleSnapshot; session: SessionView }) {
  const { transactions } = snapshot;
  const [pending, setPending] = useState<{ tx: InDoubtView; decision: "commit" | "abort" } | null>(null);
  const [message, setMessage] = useState<{ ok: boolean; text: string } | null>(null);
  const admin = session.role === "admin";

  const confirm = async () => {
    if (!pending) return;
    const { tx, decision } = pending;
    setPending(null);
    try {
      await resolveInDoubt(tx.txId, decision);
      setMessage({ ok: true, text: `${tx.txId}: ${decision} sent to every participant` });
    } catch (error) {
      setMessage({ ok: false, text: `${tx.txId}: ${(error as Error).message}` });
    }
  };

  return (
    <section>
      <div class="cards">
        <Card label="committed/s" value={rate(transactions.committedPerSecond)} />
        <Card label="aborted/s" value={rate(transactions.abortedPerSecond)} warn={(transactions.abortedPerSecond ?? 0) > 0} />
        <Card label="open now" value={transactions.active === null ? "—" : String(transactions.active)} />
        <Card label="in doubt" value={String(transactions.inDoubt.length)} warn={transactions.inDoubt.length > 0} />
      </div>
      <div class="charts">
        <TimeChart title="Throughput (transactions per second)" data={snapshot.charts.throughput} unit="tx/s" testId="chart-throughput" />
        <TimeChart title="Latency of committed transactions" data={snapshot.charts.latency} unit="ms" testId="chart-latency" />
      </div>

      <h2>Phase latencies <span class="muted">last minute</span></h2>
      <table class="grid narrow" data-testid="phases-table">
        <TableHead columns={["phase", "p50", "p99", "count"]} />
        <tbody>
          {transactions.phases.map((p) => (
            <tr key={p.phase}>
              <td>{p.phase}</td>
              <td>{ms(p.p50Ms)}</td>
              <td>{ms(p.p99Ms)}</td>
              <td>{p.count}</td>
            </tr>
          ))}
        </tbody>
      </table>

      {transactions.phases.length === 0 ? <p class="muted">No two-phase commit in the last minute.</p> : null}

      <h2>In doubt</h2>
      {message ? (
        <p class={message.ok ? "notice" : "error"} data-testid="resolve-message">
          {message.text}
        </p>
      ) : null}
      {transactions.inDoubt.length === 0 ? (
        <p class="muted" data-testid="in-doubt-empty">
          No transaction is in doubt.
        </p>
      ) : (
        <table class="grid" data-testid="in-doubt-table">
          <TableHead columns={["transaction", "state", "since", "participants", ...(admin ? ["resolve"] : [])]} />
          <tbody>
            {transactions.inDoubt.map((tx) => (
              <tr key={tx.txId} data-tx-id={tx.txId} data-kind={tx.kind}>
                <td class="mono">{tx.txId}</td>
                <td>
                  {tx.kind === "decided" ? (
                    <span>
                      decided <b>{tx.decision}</b>, not yet acknowledged everywhere
                    </span>
                  ) : (
                    <span>prepared, no decision recorded</span>
                  )}
                </td>
                <td>{age(snapshot.atMs - tx.sinceMs)}</td>
                <td>
                  {tx.participants.map((p) => (
                    <div key={p.shardId} class="participant" title={p.statements.join("\n")}>
                      <span class="mono">{p.shardId}</span> on <b>{p.nodeName}</b> {p.done ? "✓ acknowledged" : p.prepared ? "prepared" : "pending"}
                      {p.error ? <span class="muted"> ({p.error})</span> : null}
                    </div>
                  ))}
                </td>
                {admin ? (
                  <td class="actions">
                    {tx.kind === "decided" ? (
                      <button data-action={`deliver-${tx.decision}`} onClick={() => setPending({ tx, decision: tx.decision === "commit" ? "commit" : "abort" })}>
                        deliver {tx.decision} again
                      </button>
                    ) : (
                      <>
                        <button data-action="commit" onClick={() => setPending({ tx, decision: "commit" })}>
                          commit…
                        </button>
                        <button data-action="abort" onClick={() => setPending({ tx, decision: "abort" })}>
                          abort…
                        </button>
                      </>
                    )}
                  </td>
                ) : null}
              </tr>
            ))}
          </tbody>
        </table>
      )}
      {!admin && transactions.inDoubt.length > 0 ? <p class="muted">Resolving needs an admin: sign in with the admin token or an admin certificate.</p> : null}

      <h2>Recent transactions</h2>
      <table class="grid" data-testid="recent-table">
        <TableHead columns={["transaction", "outcome", "last state", "started", "duration"]} />
        <tbody>
          {transactions.recent.map((tx) => (
            <tr key={tx.txId} data-tx-id={tx.txId} data-outcome={tx.outcome}>
              <td class="mono">{tx.txId}</td>
              <td>
                <span class={`badge outcome-${tx.outcome}`}>{tx.outcome}</span>
              </td>
              <td>{tx.state}</td>
              <td>{time(tx.startedAtMs)}</td>
              <td>{ms(tx.durationMs)}</td>
            </tr>
          ))}
        </tbody>
      </table>

      {pending ? (
        <div class="modal-backdrop">
          <div class="modal" role="dialog" aria-modal="true" data-testid="confirm-resolve">
            <h3>
              {pending.decision === "commit" ? "Commit" : "Abort"} transaction {pending.tx.txId}?
            </h3>
            <p>
              Every participant below is told to <b>{pending.decision}</b>. A recorded decision cannot be changed afterwards.
            </p>
            <ul>
              {pending.tx.participants.map((p) => (
                <li key={p.shardId}>
                  <span class="mono">{p.shardId}</span> on {p.nodeName} ({p.prepared ? "prepared" : p.done ? "acknowledged" : "not prepared"})
                </li>
              ))}
            </ul>
            {pending.decision === "commit" && pending.tx.kind === "undecided" ? (
              <p class="warn">Commit only if every shard the transaction wrote is listed as prepared: the coordinator has no record of which shards took part.</p>
            ) : null}
            <div class="modal-buttons">
              <button onClick={() => setPending(null)}>Cancel</button>
              <button class={`danger`} data-action="confirm" onClick={() => void confirm()}>
                {pending.decision === "commit" ? "Commit everywhere" : "Abort everywhere"}
              </button>
            </div>
          </div>
        </div>
      ) : null}
    </section>
  );
}
