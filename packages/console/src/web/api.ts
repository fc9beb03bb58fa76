import type { ConsoleSnapshot, SessionView } from "../core/snapshot";

/** Every write carries these; the server refuses a write without them (see core/access.ts). */
const writeHeaders = { "content-type": "application/json", "x-mycelium-console": "1" };

async function answer<T>(response: Response): Promise<T> {
  const body = (await response.json().catch(() => ({}))) as T & { error?: string };
  if (!response.ok) throw new Error(body.error ?? `${response.status} ${response.statusText}`);
  return body;
}

export async function fetchSession(): Promise<SessionView> {
  return answer<SessionView>(await fetch("/api/session", { credentials: "same-origin" }));
}

export async function signIn(token: string): Promise<SessionView> {
  return answer<SessionView>(await fetch("/api/session", { method: "POST", headers: writeHeaders, body: JSON.stringify({ token }), credentials: "same-origin" }));
}

export async function signOut(): Promise<void> {
  await answer(await fetch("/api/session", { method: "DELETE", headers: writeHeaders, credentials: "same-origin" }));
}

export async function resolveInDoubt(txId: string, decision: "commit" | "abort"): Promise<{ txId: string; decision: string }> {
  return answer(await fetch("/api/in-doubt/resolve", { method: "POST", headers: writeHeaders, body: JSON.stringify({ txId, decision }), credentials: "same-origin" }));
}

/** Live snapshots from the server; EventSource reconnects by itself when the stream drops. */
export function followSnapshots(onSnapshot: (snapshot: ConsoleSnapshot) => void, onConnection: (connected: boolean) => void): () => void {
  const source = new EventSource("/api/events");
  source.addEventListener("snapshot", (event) => onSnapshot(JSON.parse((event as MessageEvent<string>).data) as ConsoleSnapshot));
  source.onopen = () => onConnection(true);
  source.onerror = () => onConnection(false);
  return () => source.close();
}
