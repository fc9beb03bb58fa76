import { useEffect, useState } from "preact/hooks";
import type { ConsoleSnapshot, SessionView } from "../core/snapshot";
import { fetchSession, followSnapshots, signIn, signOut } from "./api";
import { age } from "./format";
import { ConflictsPage } from "./pages/conflicts";
import { MovesPage } from "./pages/moves";
import { NodesPage } from "./pages/nodes";
import { ShardsPage } from "./pages/shards";
import { TransactionsPage } from "./pages/transactions";

const pages = [
  { id: "nodes", title: "Nodes" },
  { id: "shards", title: "Tables & shards" },
  { id: "transactions", title: "Transactions" },
  { id: "conflicts", title: "Conflicts" },
  { id: "moves", title: "Moves" },
] as const;

type PageId = (typeof pages)[number]["id"];

function pageFromHash(): PageId {
  const id = location.hash.replace(/^#\/?/, "");
  return (pages.find((p) => p.id === id)?.id ?? "nodes") as PageId;
}

const noSession: SessionView = { role: "none", via: "none", identity: "", tokenSignIn: false };

export function App() {
  const [page, setPage] = useState<PageId>(pageFromHash());
  const [snapshot, setSnapshot] = useState<ConsoleSnapshot | null>(null);
  const [session, setSession] = useState<SessionView>(noSession);
  const [connected, setConnected] = useState(false);
  const [signingIn, setSigningIn] = useState(false);
  const [notice, setNotice] = useState<string | null>(null);
  const [now, setNow] = useState(Date.now());

  useEffect(() => {
    const onHash = () => setPage(pageFromHash());
    window.addEventListener("hashchange", onHash);
    const ticker = setInterval(() => setNow(Date.now()), 1000);
    void start();
    return () => {
      window.removeEventListener("hashchange", onHash);
      clearInterval(ticker);
    };
  }, []);

  async function start() {
    // A sign-in link (#signin=<token>, printed by `mycelium dashboard`): the token is in the fragment, which
    // the browser never sends anywhere; it is exchanged for a session cookie and removed from the address bar.
    const match = /^#signin=(.+)$/.exec(location.hash);
    if (match) {
      history.replaceState(null, "", "#/nodes");
      setPage("nodes");
      try {
        setSession(await signIn(decodeURIComponent(match[1]!)));
      } catch (error) {
        setNotice(`sign-in failed: ${(error as Error).message}`);
      }
    }
    try {
      setSession(await fetchSession());
    } catch (error) {
      setNotice(`cannot reach the dashboard server: ${(error as Error).message}`);
    }
    followSnapshots(setSnapshot, setConnected);
  }

  async function submitToken(token: string) {
    try {
      setSession(await signIn(token));
      setSigningIn(false);
      setNotice(null);
    } catch (error) {
      setNotice(`sign-in failed: ${(error as Error).message}`);
    }
  }

  const stale = snapshot ? now - snapshot.atMs > Math.max(5000, snapshot.refreshMs * 4) : true;
  return (
    <div class="layout">
      <header>
        <div class="brand">
          Mycelium <span class="muted">{snapshot ? `network ${snapshot.networkId}` : ""}</span>
        </div>
        <nav>
          {pages.map((p) => (
            <a key={p.id} href={`#/${p.id}`} class={p.id === page ? "active" : ""} data-page={p.id}>
              {p.title}
              {p.id === "transactions" && snapshot && snapshot.transactions.inDoubt.length > 0 ? <span class="pill">{snapshot.transactions.inDoubt.length}</span> : null}
              {p.id === "conflicts" && snapshot && snapshot.conflicts.some((c) => c.status === "pending") ? (
                <span class="pill">{snapshot.conflicts.filter((c) => c.status === "pending").length}</span>
              ) : null}
            </a>
          ))}
        </nav>
        <div class="status">
          <span class={`dot ${connected && !stale ? "live" : "stale"}`} data-testid="live-status" data-live={connected && !stale ? "yes" : "no"} />
          {snapshot ? `updated ${age(Math.max(0, now - snapshot.atMs))} ago` : "waiting for data"}
          <span class="session" data-testid="session-role" data-role={session.role}>
            {session.role === "admin" ? "admin" : session.role === "viewer" ? "read-only" : "signed out"}
          </span>
          {session.role !== "admin" && session.tokenSignIn ? (
            <button onClick={() => setSigningIn(true)} data-action="sign-in">
              sign in
            </button>
          ) : null}
          {session.via === "token" ? (
            <button
              onClick={() => {
                void signOut().then(fetchSession).then(setSession);
              }}
            >
              sign out
            </button>
          ) : null}
        </div>
      </header>
      {notice ? <p class="error">{notice}</p> : null}
      {snapshot && snapshot.errors.length > 0 ? (
        <div class="errors" data-testid="source-errors">
          {snapshot.errors.map((e, i) => (
            <div key={i}>
              <b>{e.source}</b>: {e.message}
            </div>
          ))}
        </div>
      ) : null}
      <main data-testid={`page-${page}`}>
        {session.role === "none" && !snapshot ? (
          <p>Sign in with the admin token, or open this page with a cluster client certificate.</p>
        ) : !snapshot ? (
          <p class="loading">Waiting for the first picture of the cluster…</p>
        ) : page === "nodes" ? (
          <NodesPage snapshot={snapshot} />
        ) : page === "shards" ? (
          <ShardsPage snapshot={snapshot} />
        ) : page === "transactions" ? (
          <TransactionsPage snapshot={snapshot} session={session} />
        ) : page === "conflicts" ? (
          <ConflictsPage snapshot={snapshot} />
        ) : (
          <MovesPage snapshot={snapshot} />
        )}
      </main>
      {signingIn ? <SignIn onSubmit={(token) => void submitToken(token)} onCancel={() => setSigningIn(false)} /> : null}
    </div>
  );
}

function SignIn(props: { onSubmit: (token: string) => void; onCancel: () => void }) {
  const [token, setToken] = useState("");
  return (
    <div class="modal-backdrop">
      <form
        class="modal"
        onSubmit={(event) => {
          event.preventDefault();
          props.onSubmit(token);
        }}
      >
        <h3>Sign in as admin</h3>
        <p>Paste the admin token (`mycelium dashboard` prints a sign-in link, or reads it from --admin-token-file).</p>
        <input type="password" autoComplete="off" value={token} onInput={(e) => setToken((e.target as HTMLInputElement).value)} data-testid="token-input" />
        <div class="modal-buttons">
          <button type="button" onClick={props.onCancel}>
            Cancel
          </button>
          <button type="submit">Sign in</button>
        </div>
      </form>
    </div>
  );
}
