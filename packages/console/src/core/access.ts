import type { SessionView } from "./snapshot";

/**
 * Who may do what on the dashboard. Reading is "viewer"; resolving an in-doubt transaction is "admin".
 *
 *   - A verified client certificate of the cluster (HTTPS with client certificates required): the
 *     `admin` role is admin, the `client` role is viewer, service identities are refused.
 *   - A session opened with the admin token: admin.
 *   - Nothing else, on a loopback listener without client certificates: viewer (the same trust as
 *     the machine's users, who can read the data directory anyway). Anywhere else: nobody.
 *
 * The dashboard's own gRPC admin certificate never leaves the server: the browser only ever holds
 * an HttpOnly session cookie.
 */
export interface AccessInput {
  networkId: string;
  listenerIsLoopback: boolean;
  /** The listener asks for (and verifies) client certificates. */
  clientCertificates: boolean;
  /** The verified peer certificate's identity, if one was presented. */
  peer: { networkId: string; role: string; name: string } | null;
  /** A valid session opened with the admin token. */
  tokenSession: boolean;
  /** Whether the admin token can be used here. */
  tokenSignIn: boolean;
}

export function resolveAccess(input: AccessInput): SessionView {
  const tokenSignIn = input.tokenSignIn;
  if (input.tokenSession) return { role: "admin", via: "token", identity: "admin token", tokenSignIn };
  const peer = input.peer;
  if (peer && peer.networkId === input.networkId) {
    const identity = `spiffe://${peer.networkId}/${peer.role}/${peer.name}`;
    if (peer.role === "admin") return { role: "admin", via: "certificate", identity, tokenSignIn };
    if (peer.role === "client") return { role: "viewer", via: "certificate", identity, tokenSignIn };
    return { role: "none", via: "certificate", identity, tokenSignIn };
  }
  if (input.listenerIsLoopback && !input.clientCertificates) return { role: "viewer", via: "loopback", identity: "loopback", tokenSignIn };
  return { role: "none", via: "none", identity: "", tokenSignIn };
}

export function isLoopbackHost(host: string): boolean {
  const bare = host.replace(/^\[|\]$/g, "").toLowerCase();
  return bare === "localhost" || bare === "::1" || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(bare);
}

/**
 * Whether a request's Host header may be answered. On a loopback listener only loopback names are,
 * so a web page elsewhere cannot reach the dashboard through DNS rebinding (a name of its own that
 * resolves to 127.0.0.1).
 */
export function hostAllowed(hostHeader: string | undefined, listenerIsLoopback: boolean): boolean {
  if (!hostHeader) return false;
  if (!listenerIsLoopback) return true;
  const match = /^(\[[^\]]+\]|[^:]+)(?::\d+)?$/.exec(hostHeader);
  return match !== null && isLoopbackHost(match[1]!);
}

/**
 * Whether a state-changing request comes from the dashboard's own page: a browser sends Origin on every
 * POST, and it must be this server. The custom header the page adds forces a CORS preflight that the
 * server never grants, so a form on another site cannot submit either.
 */
export function sameOrigin(origin: string | undefined, hostHeader: string | undefined, scheme: "http" | "https"): boolean {
  if (!hostHeader) return false;
  if (origin === undefined) return true;
  return origin === `${scheme}://${hostHeader}`;
}
