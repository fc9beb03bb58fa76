import * as fs from "node:fs";
import * as http from "node:http";
import * as https from "node:https";
import type { AddressInfo } from "node:net";
import * as path from "node:path";
import type { TLSSocket } from "node:tls";
import { identityFromCertificate } from "@mycelium/tls";
import { hostAllowed, isLoopbackHost, resolveAccess, sameOrigin } from "../core/access";
import { rebalancerNotBuilt, type MovesSource } from "../core/moves";
import { RecentTransactions } from "../core/recent-transactions";
import type { ConsoleSnapshot, SessionView } from "../core/snapshot";
import { readBounded } from "../io/read-bounded";
import type { ClusterAdmin } from "./cluster-admin";
import { Collector, type MetricsTarget } from "./collector";
import { EventStream } from "./event-stream";
import { cookieValue, TokenSessions } from "./sessions";
import { staticAssetsDir, serveStatic } from "./static-files";
import { TransactionFeed } from "./transaction-feed";

export interface DashboardOptions {
  /** Where to listen. @default { host: "127.0.0.1", port: 7480 } */
  listen?: { host: string; port: number };
  admin: ClusterAdmin;
  networkId: string;
  metricsTargets?: readonly MetricsTarget[];
  /** Local node names (node id → v1, m1) for the pages. */
  nodeNames?: ReadonlyMap<string, string>;
  /** How often the cluster is asked and the pages updated. @default 1000 */
  refreshMs?: number;
  /** Minutes the plots look back. @default 10 */
  historyMinutes?: number;
  /**
   * Serve HTTPS with this certificate. With `clientCaPath`, every connection must present a client
   * certificate signed by that CA (the cluster's): `admin` identities may act, `client` ones read.
   */
  https?: { certPath: string; keyPath: string; clientCaPath?: string };
  /** The admin token for signing in (null: token sign-in disabled). @default null */
  adminToken?: string | null;
  /** Where the moves page reads from. @default rebalancer not built */
  moves?: MovesSource;
  /** The built web app. @default the package's dist/web */
  staticDir?: string;
  /** Compare shard copies by checksum this often. @default 15000 */
  checksumIntervalMs?: number;
  /** Prepared transactions younger than this are not listed as in doubt. @default 2000 */
  inDoubtMinAgeMs?: number;
  /** Most pages following live updates at once. @default 32 */
  maxStreams?: number;
  /** Lines for the operator (a resolution, a failed refresh). */
  log?: (line: string) => void;
}

export interface Dashboard {
  url: string;
  port: number;
  /** The latest snapshot (null before the first refresh finished). */
  latest(): ConsoleSnapshot | null;
  /** Refresh now and wait for it. */
  refresh(): Promise<ConsoleSnapshot>;
  close(): Promise<void>;
}

type Resolved = Required<Omit<DashboardOptions, "https" | "log">> & Pick<DashboardOptions, "https" | "log">;

function withDefaults(options: DashboardOptions): Resolved {
  const resolved = {
    listen: { host: "127.0.0.1", port: 7480 },
    metricsTargets: [],
    nodeNames: new Map(),
    refreshMs: 1000,
    historyMinutes: 10,
    adminToken: null,
    moves: rebalancerNotBuilt,
    staticDir: staticAssetsDir(),
    checksumIntervalMs: 15_000,
    inDoubtMinAgeMs: 2000,
    maxStreams: 32,
    ...Object.fromEntries(Object.entries(options).filter(([, value]) => value !== undefined)),
  } as unknown as Resolved;
  if (!(resolved.refreshMs >= 200 && resolved.refreshMs <= 60_000)) throw new Error(`the refresh interval must be within 200 ms and 60 s, got ${resolved.refreshMs} ms`);
  if (!(resolved.historyMinutes > 0 && resolved.historyMinutes <= 60)) throw new Error(`the plots look back 1 to 60 minutes, got ${resolved.historyMinutes}`);
  const exposed = !isLoopbackHost(resolved.listen.host);
  if (exposed && !resolved.https) {
    throw new Error(
      `listening on ${resolved.listen.host} exposes the dashboard beyond this machine: serve it over HTTPS (--tls-cert, --tls-key) with client certificates (--client-ca) or an admin token (--admin-token-file), or listen on 127.0.0.1`,
    );
  }
  if (exposed && !resolved.https?.clientCaPath && !resolved.adminToken) {
    throw new Error(`listening on ${resolved.listen.host} needs a way to tell operators apart: client certificates (--client-ca) or an admin token (--admin-token-file)`);
  }
  if (!fs.existsSync(path.join(resolved.staticDir, "index.html"))) throw new Error(`the web app is missing from ${resolved.staticDir}: build it first (pnpm build)`);
  return resolved;
}

const sessionCookie = "myc_session";

/**
 * The operator's dashboard: the built web app as static files, the cluster's state as JSON
 * (`/api/snapshot`) and as a live stream of server-sent events (`/api/events`), and the one action
 * it allows, resolving an in-doubt transaction (`POST /api/in-doubt/resolve`, admin only).
 */
export async function startDashboard(input: DashboardOptions): Promise<Dashboard> {
  const options = withDefaults(input);
  const log = options.log ?? (() => undefined);
  const loopback = isLoopbackHost(options.listen.host);
  const clientCertificates = Boolean(options.https?.clientCaPath);
  const scheme = options.https ? "https" : "http";
  const sessions = new TokenSessions(options.adminToken);
  const recent = new RecentTransactions(200);
  const feed = new TransactionFeed(options.admin.client, recent).start();
  const collector = new Collector({
    admin: options.admin,
    networkId: options.networkId,
    metricsTargets: options.metricsTargets,
    nodeNames: options.nodeNames,
    refreshMs: options.refreshMs,
    historyMinutes: options.historyMinutes,
    recent,
    moves: options.moves,
    checksumIntervalMs: options.checksumIntervalMs,
    inDoubtMinAgeMs: options.inDoubtMinAgeMs,
  });
  const stream = new EventStream(options.maxStreams);
  let latest: ConsoleSnapshot | null = null;

  // ---- the refresh loop: one collection at a time, the next refreshMs after the last ended --------
  let stopped = false;
  let timer: NodeJS.Timeout | null = null;
  let inFlight: Promise<ConsoleSnapshot> | null = null;
  const refresh = (): Promise<ConsoleSnapshot> => {
    inFlight ??= collector
      .collect()
      .then((snapshot) => {
        if (feed.lastError) snapshot.errors.push({ source: "coordinator Subscribe", message: feed.lastError });
        latest = snapshot;
        stream.broadcast("snapshot", snapshot);
        return snapshot;
      })
      .finally(() => {
        inFlight = null;
      });
    return inFlight;
  };
  const schedule = () => {
    if (stopped) return;
    timer = setTimeout(() => {
      refresh()
        .catch((error: unknown) => log(`refresh failed: ${(error as Error).message}`))
        .finally(schedule);
    }, options.refreshMs);
  };

  // ---- requests -------------------------------------------------------------------------------
  const sessionOf = (request: http.IncomingMessage): SessionView => {
    let peer: { networkId: string; role: string; name: string } | null = null;
    const socket = request.socket as TLSSocket;
    if (clientCertificates && socket.authorized) {
      try {
        peer = identityFromCertificate(socket.getPeerCertificate());
      } catch {
        peer = null;
      }
    }
    return resolveAccess({
      networkId: options.networkId,
      listenerIsLoopback: loopback,
      clientCertificates,
      peer,
      tokenSession: sessions.valid(cookieValue(request.headers.cookie, sessionCookie), Date.now()),
      tokenSignIn: sessions.enabled,
    });
  };

  const handle = async (request: http.IncomingMessage, response: http.ServerResponse): Promise<void> => {
    const url = new URL(request.url ?? "/", "http://dashboard");
    const pathname = url.pathname;
    securityHeaders(response);
    if (!hostAllowed(request.headers.host, loopback)) {
      return json(response, 421, { error: `this dashboard answers only to loopback names (localhost, 127.0.0.1), not ${request.headers.host ?? "(none)"}` });
    }
    if (pathname === "/healthz") return text(response, 200, "ok\n");
    const session = sessionOf(request);

    if (pathname === "/api/session") {
      if (request.method === "GET") return json(response, 200, session);
      if (!checkWrite(request, response, scheme)) return;
      if (request.method === "POST") {
        const body = await readJson(request, 4096);
        const result = sessions.signIn((body as { token?: unknown } | null)?.token, Date.now());
        if (result === "disabled") return json(response, 404, { error: "signing in with a token is not enabled on this dashboard (start it with --admin-token-file)" });
        if (result === "throttled") return json(response, 429, { error: "too many sign-in attempts; wait a minute" });
        if (result === "wrong") return json(response, 401, { error: "that is not the admin token" });
        const secure = scheme === "https" ? "; Secure" : "";
        response.setHeader("set-cookie", `${sessionCookie}=${result.sessionId}; HttpOnly; SameSite=Strict; Path=/${secure}`);
        return json(response, 200, { ...session, role: "admin", via: "token", identity: "admin token" });
      }
      if (request.method === "DELETE") {
        sessions.signOut(cookieValue(request.headers.cookie, sessionCookie));
        response.setHeader("set-cookie", `${sessionCookie}=; HttpOnly; SameSite=Strict; Path=/; Max-Age=0`);
        return json(response, 200, { ok: true });
      }
      return json(response, 405, { error: "GET, POST or DELETE" });
    }

    // Static files are the same for everyone: the sign-in form must load before anyone is known.
    if (!pathname.startsWith("/api/")) {
      if (request.method !== "GET" && request.method !== "HEAD") return text(response, 405, "GET only\n");
      return serveStatic(options.staticDir, pathname, response);
    }

    if (session.role === "none") return json(response, 401, { error: "sign in: present a cluster client certificate, or the admin token" });

    if (pathname === "/api/snapshot" && request.method === "GET") {
      return json(response, 200, latest ?? (await refresh()));
    }
    if (pathname === "/api/events" && request.method === "GET") {
      if (!stream.add(response)) return json(response, 503, { error: `${options.maxStreams} pages already follow this dashboard; close one` });
      if (latest) stream.send(response, "snapshot", latest);
      return;
    }
    if (pathname === "/api/in-doubt/resolve") {
      if (request.method !== "POST") return json(response, 405, { error: "POST only" });
      if (!checkWrite(request, response, scheme)) return;
      if (session.role !== "admin") return json(response, 403, { error: "resolving a transaction needs an admin: sign in with the admin token or an admin certificate" });
      const body = (await readJson(request, 4096)) as { txId?: unknown; decision?: unknown } | null;
      const txId = typeof body?.txId === "string" ? body.txId : "";
      const decision = body?.decision === "commit" || body?.decision === "abort" ? body.decision : null;
      if (!txId || !decision) return json(response, 400, { error: 'send {"txId": "...", "decision": "commit" | "abort"}' });
      // Participants come from what the cluster said, never from the page.
      const known = (latest ?? (await refresh())).transactions.inDoubt.find((t) => t.txId === txId);
      if (!known) return json(response, 404, { error: `transaction ${txId} is not in doubt (any more): refresh the page` });
      if (known.kind === "decided" && known.decision !== decision) {
        return json(response, 409, { error: `transaction ${txId} is recorded as ${known.decision.toUpperCase()}; a recorded decision cannot be changed, only delivered again` });
      }
      try {
        const participants = known.kind === "undecided" ? known.participants.map((p) => `${p.shardId}=${p.nodeId}`) : [];
        const result = await options.admin.forceResolve(txId, decision, participants);
        log(`transaction ${txId} resolved ${decision.toUpperCase()} by ${session.identity}`);
        void refresh().catch(() => undefined);
        return json(response, 200, { txId, decision, participants: result.participants.map((p) => ({ shardId: p.shardId, nodeId: p.nodeId, done: p.done })) });
      } catch (error) {
        return json(response, 502, { error: (error as Error).message });
      }
    }
    return json(response, 404, { error: `no such endpoint: ${request.method} ${pathname}` });
  };

  const listener = (request: http.IncomingMessage, response: http.ServerResponse) => {
    handle(request, response).catch((error: unknown) => {
      log(`request ${request.method} ${request.url} failed: ${(error as Error).message}`);
      if (!response.headersSent) json(response, (error as { status?: number }).status ?? 500, { error: (error as Error).message });
      else response.destroy();
    });
  };
  const server = options.https
    ? https.createServer(
        {
          cert: fs.readFileSync(options.https.certPath),
          key: fs.readFileSync(options.https.keyPath),
          ...(options.https.clientCaPath ? { ca: fs.readFileSync(options.https.clientCaPath), requestCert: true, rejectUnauthorized: true } : {}),
        },
        listener,
      )
    : http.createServer(listener);
  server.keepAliveTimeout = 5000;
  // Event streams stay open; ordinary requests do not.
  server.requestTimeout = 0;
  server.headersTimeout = 10_000;

  await new Promise<void>((resolve, reject) => {
    server.once("error", (error: NodeJS.ErrnoException) =>
      reject(error.code === "EADDRINUSE" ? new Error(`${options.listen.host}:${options.listen.port} is in use: pick another with --listen <host:port> (port 0 picks a free one)`) : error),
    );
    server.listen(options.listen.port, options.listen.host, () => resolve());
  });
  const port = (server.address() as AddressInfo).port;
  const shownHost = options.listen.host.includes(":") ? `[${options.listen.host}]` : options.listen.host;
  await refresh().catch((error: unknown) => log(`first refresh failed: ${(error as Error).message}`));
  schedule();

  return {
    url: `${scheme}://${shownHost}:${port}/`,
    port,
    latest: () => latest,
    refresh,
    async close() {
      stopped = true;
      if (timer) clearTimeout(timer);
      stream.closeAll();
      await Promise.all([feed.stop(), inFlight?.catch(() => undefined), collector.settle().catch(() => undefined)]);
      await new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      });
    },
  };
}

/** A write must be JSON from the dashboard's own page (see sameOrigin). */
function checkWrite(request: http.IncomingMessage, response: http.ServerResponse, scheme: "http" | "https"): boolean {
  if (request.headers["x-mycelium-console"] !== "1" || !(request.headers["content-type"] ?? "").startsWith("application/json")) {
    json(response, 403, { error: "writes need Content-Type: application/json and X-Mycelium-Console: 1 (the dashboard page sends both)" });
    return false;
  }
  if (!sameOrigin(request.headers.origin, request.headers.host, scheme)) {
    json(response, 403, { error: `a request from ${request.headers.origin} may not change anything here` });
    return false;
  }
  return true;
}

function securityHeaders(response: http.ServerResponse): void {
  response.setHeader("content-security-policy", "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'");
  response.setHeader("x-content-type-options", "nosniff");
  response.setHeader("referrer-policy", "no-referrer");
  response.setHeader("x-frame-options", "DENY");
}

function json(response: http.ServerResponse, status: number, body: unknown): void {
  response.writeHead(status, { "content-type": "application/json; charset=utf-8", "cache-control": "no-store" }).end(JSON.stringify(body));
}

function text(response: http.ServerResponse, status: number, body: string): void {
  response.writeHead(status, { "content-type": "text/plain; charset=utf-8" }).end(body);
}

async function readJson(request: http.IncomingMessage, maxBytes: number): Promise<unknown> {
  const body = (await readBounded(request, maxBytes, "the request body")).toString("utf8");
  try {
    return body ? JSON.parse(body) : null;
  } catch {
    throw Object.assign(new Error("the request body is not JSON"), { status: 400 });
  }
}
