import { X509Certificate } from "node:crypto";
import { TlsError } from "./tls-error";

export type Role = "coordinator" | "shard-router" | "replicator" | "node-agent" | "client" | "admin";
export const roles: readonly Role[] = Object.freeze(["coordinator", "shard-router", "replicator", "node-agent", "client", "admin"]);

/** Who a certificate speaks for: spiffe://<networkId>/<role>/<name>. */
export interface Identity {
  networkId: string;
  role: Role;
  name: string;
  uri: string;
}

// A SPIFFE trust domain allows lowercase letters, digits, '.', '-', '_'; the same rule as MYCELIUM_NETWORK_ID.
const networkIdPattern = /^[a-z0-9._-]{1,255}$/;
// One path segment; no '/', no '.'/'..' tricks, nothing that needs escaping. The same rule as MYCELIUM_NAME.
const namePattern = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;

export function isRole(value: string): value is Role {
  return (roles as readonly string[]).includes(value);
}

export function identityUri(networkId: string, role: Role, name: string): string {
  checkParts(networkId, role, name);
  return `spiffe://${networkId}/${role}/${name}`;
}

export function parseIdentityUri(uri: string): Identity {
  const match = /^spiffe:\/\/([^/?#]*)\/([^/?#]*)\/([^/?#]*)$/.exec(uri);
  if (!match) {
    throw new TlsError("INVALID_IDENTITY", `"${uri}" is not a Mycelium identity: expected spiffe://<network-id>/<role>/<name>`);
  }
  const [, networkId = "", role = "", name = ""] = match;
  checkParts(networkId, role, name);
  return { networkId, role: role as Role, name, uri };
}

function checkParts(networkId: string, role: string, name: string): void {
  if (!networkIdPattern.test(networkId)) {
    throw new TlsError("INVALID_IDENTITY", `network id "${networkId}" must be 1-255 lowercase letters, digits, '.', '-' or '_'`);
  }
  if (!isRole(role)) {
    throw new TlsError("INVALID_IDENTITY", `role "${role}" is not one of ${roles.join(", ")}`);
  }
  if (!namePattern.test(name)) {
    throw new TlsError("INVALID_IDENTITY", `name "${name}" must be 1-128 letters, digits, '.', '-' or '_', starting with a letter or digit`);
  }
}

/**
 * The identity in a certificate's single URI SAN. Accepts what each caller has at hand: a PEM string, an
 * X509Certificate, or the PeerCertificate of a TLS socket (grpc-js `authContext.sslPeerCertificate`).
 *
 * This reads the certificate; it does not verify it. It is only an authentication when the certificate came
 * through a handshake that verified it against the cluster CA (servers with client certificates required).
 */
export function identityFromCertificate(certificate: { subjectaltname?: string } | X509Certificate | string): Identity {
  let subjectAltName: string | undefined;
  if (typeof certificate === "string") {
    try {
      subjectAltName = new X509Certificate(certificate).subjectAltName;
    } catch (error) {
      throw new TlsError("INVALID_CERTIFICATE", `not a PEM certificate: ${(error as Error).message}`, { cause: error });
    }
  } else if (certificate instanceof X509Certificate) {
    subjectAltName = certificate.subjectAltName;
  } else {
    subjectAltName = certificate.subjectaltname;
  }
  const uris = parseSubjectAltName(subjectAltName ?? "")
    .filter((entry) => entry.type === "URI")
    .map((entry) => entry.value);
  if (uris.length !== 1) {
    throw new TlsError("INVALID_IDENTITY", `a Mycelium certificate carries exactly one URI SAN (its identity), this one has ${uris.length}`);
  }
  return parseIdentityUri(uris[0]!);
}

/**
 * Splits Node's subjectAltName text, "DNS:a, IP Address:127.0.0.1, URI:spiffe://…". Node quotes a value as a
 * JSON string when it contains a comma or quote (CVE-2021-44532), so a crafted SAN cannot smuggle a second entry.
 */
export function parseSubjectAltName(text: string): Array<{ type: string; value: string }> {
  const entries: Array<{ type: string; value: string }> = [];
  let position = 0;
  while (position < text.length) {
    const colon = text.indexOf(":", position);
    if (colon === -1) break;
    const type = text.slice(position, colon);
    let value: string;
    let end: number;
    if (text[colon + 1] === '"') {
      end = colon + 2;
      while (end < text.length && text[end] !== '"') end += text[end] === "\\" ? 2 : 1;
      end += 1;
      try {
        value = JSON.parse(text.slice(colon + 1, end)) as string;
      } catch {
        throw new TlsError("INVALID_IDENTITY", `malformed subjectAltName: ${text}`);
      }
    } else {
      end = text.indexOf(", ", colon + 1);
      if (end === -1) end = text.length;
      value = text.slice(colon + 1, end);
    }
    entries.push({ type, value });
    position = text.startsWith(", ", end) ? end + 2 : end;
  }
  return entries;
}
