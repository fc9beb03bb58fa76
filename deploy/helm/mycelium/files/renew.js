// Certificate renewer of certificates.mode=caSecret: the only pod that reads the CA key. Run by a Job at every
// install and upgrade and by a CronJob, it keeps one kubernetes.io/tls Secret per identity (tls.crt, tls.key, ca.crt)
// current, the same Secrets cert-manager would keep in certManager mode; pods mount them and the services reload the
// files without a restart (the kubelet updates Secret volumes in place).
//
// A certificate is (re)issued when its Secret is missing, when it no longer checks out against the CA bundle
// (expired, another CA, key mismatch), when its identity or names differ from what the chart wants now, when the CA
// bundle changed, or when less than RENEW_BEFORE_DAYS of its validity remain. Node-agent key pairs come from Secrets
// "<prefix>-<ordinal>" (keys public-key, private-key); with identity.source=generate a missing one is created here,
// once, and never replaced: the node id is derived from it.
//
//   RENEW_NETWORK_ID, RENEW_CA_DIR (tls.crt, tls.key), RENEW_VALIDITY_DAYS, RENEW_BEFORE_DAYS, RENEW_TLS_MODULE,
//   RENEW_NAMESPACE, RENEW_LABELS (JSON), RENEW_CERTIFICATES (JSON: [{secret, role, name | keySecret, generateKey,
//   hosts}]), RENEW_API_URL (default: the in-cluster API server, with the pod's service account token)
//
// It uses only node: built-ins and @mycelium/tls from the image. Exits 1 when any certificate could not be kept
// current, after trying all of them; each problem is one line saying what to fix.
"use strict";

const fs = require("node:fs");
const https = require("node:https");
const http = require("node:http");
const path = require("node:path");
const { X509Certificate } = require("node:crypto");
const { isIP } = require("node:net");

const serviceAccountDir = "/var/run/secrets/kubernetes.io/serviceaccount";
const requestTimeoutMs = 10_000;

function setting(name, fallback) {
  const value = (process.env[name] ?? "").trim();
  if (value !== "") return value;
  if (fallback !== undefined) return fallback;
  process.stderr.write(`mycelium renew: ${name} is not set (the chart sets it; is this the chart's Job?)\n`);
  process.exit(1);
}

const networkId = setting("RENEW_NETWORK_ID");
const caDir = setting("RENEW_CA_DIR");
const validityDays = Number(setting("RENEW_VALIDITY_DAYS", "90"));
const renewBeforeDays = Number(setting("RENEW_BEFORE_DAYS", "30"));
const namespace = setting("RENEW_NAMESPACE");
const labels = JSON.parse(setting("RENEW_LABELS", "{}"));
const wanted = JSON.parse(setting("RENEW_CERTIFICATES"));
const tls = require(setting("RENEW_TLS_MODULE", path.join(process.cwd(), "node_modules/@mycelium/tls")));
if (!(renewBeforeDays > 0 && renewBeforeDays < validityDays)) {
  process.stderr.write(`mycelium renew: RENEW_BEFORE_DAYS (${renewBeforeDays}) must be positive and less than RENEW_VALIDITY_DAYS (${validityDays})\n`);
  process.exit(1);
}

// --- the Kubernetes API: GET, POST and PUT of Secrets, nothing else ----------------------------------------------
const inCluster = !process.env.RENEW_API_URL;
const apiUrl = new URL(process.env.RENEW_API_URL || `https://${process.env.KUBERNETES_SERVICE_HOST}:${process.env.KUBERNETES_SERVICE_PORT || "443"}`);
const readOptional = (file) => (fs.existsSync(file) ? fs.readFileSync(file, "utf8").trim() : undefined);
const token = inCluster ? readOptional(path.join(serviceAccountDir, "token")) : undefined;
const apiCa = inCluster ? readOptional(path.join(serviceAccountDir, "ca.crt")) : undefined;

function api(method, resourcePath, body) {
  const transport = apiUrl.protocol === "https:" ? https : http;
  return new Promise((resolve, reject) => {
    const request = transport.request(
      new URL(resourcePath, apiUrl),
      {
        method,
        timeout: requestTimeoutMs,
        headers: { accept: "application/json", ...(body ? { "content-type": "application/json" } : {}), ...(token ? { authorization: `Bearer ${token}` } : {}) },
        ...(apiCa ? { ca: apiCa } : {}),
      },
      (response) => {
        let text = "";
        response.setEncoding("utf8");
        response.on("data", (chunk) => (text += chunk));
        response.on("end", () => {
          let parsed;
          try {
            parsed = text ? JSON.parse(text) : undefined;
          } catch {
            parsed = { message: text };
          }
          resolve({ status: response.statusCode, body: parsed });
        });
      },
    );
    request.on("timeout", () => request.destroy(new Error(`no answer from ${apiUrl.origin} within ${requestTimeoutMs} ms`)));
    request.on("error", reject);
    request.end(body ? JSON.stringify(body) : undefined);
  });
}

const secretsPath = `/api/v1/namespaces/${encodeURIComponent(namespace)}/secrets`;

async function getSecret(name) {
  const { status, body } = await api("GET", `${secretsPath}/${encodeURIComponent(name)}`);
  if (status === 404) return undefined;
  if (status !== 200) throw new Error(`reading Secret ${name}: HTTP ${status} ${body?.message ?? ""} (does the renewer's Role allow get on it?)`);
  return body;
}

async function putSecret(name, type, stringData, existing) {
  const data = Object.fromEntries(Object.entries(stringData).map(([key, value]) => [key, Buffer.from(value).toString("base64")]));
  const secret = {
    apiVersion: "v1",
    kind: "Secret",
    metadata: { name, namespace, labels: { ...(existing?.metadata?.labels ?? {}), ...labels }, ...(existing ? { resourceVersion: existing.metadata.resourceVersion } : {}) },
    type,
    data,
  };
  const { status, body } = existing
    ? await api("PUT", `${secretsPath}/${encodeURIComponent(name)}`, secret)
    : await api("POST", secretsPath, secret);
  if (status === 409) throw new Error(`Secret ${name} changed while it was renewed; the next run tries again`);
  if (status !== 200 && status !== 201) throw new Error(`writing Secret ${name}: HTTP ${status} ${body?.message ?? ""}`);
}

const decoded = (secret, key) => (secret?.data?.[key] === undefined ? undefined : Buffer.from(secret.data[key], "base64").toString("utf8"));

// --- what to issue ------------------------------------------------------------------------------------------------
const read = (file, what) => {
  try {
    return fs.readFileSync(path.join(caDir, file), "utf8").trim() + "\n";
  } catch (error) {
    process.stderr.write(`mycelium renew: cannot read ${what} at ${path.join(caDir, file)}: ${error.message} (is the CA Secret there, with that key?)\n`);
    process.exit(1);
  }
};
const ca = { certPem: read("tls.crt", "the CA certificate"), keyPem: read("tls.key", "the CA key") };

/** The node id of a node-agent entry, from its key Secret (created first with generateKey). */
async function nodeName(entry) {
  let secret = await getSecret(entry.keySecret);
  if (!secret) {
    if (!entry.generateKey) throw new Error(`waiting for Secret ${entry.keySecret} with keys public-key and private-key (mycelium keygen; see the chart README)`);
    const pair = tls.generateNodeKeyPair();
    await putSecret(entry.keySecret, "Opaque", { "public-key": pair.publicKeyHex + "\n", "private-key": pair.privateKeyHex + "\n" });
    process.stdout.write(`created node key pair ${entry.keySecret} (node id ${tls.nodeIdFromPublicKey(pair.publicKeyHex)})\n`);
    secret = await getSecret(entry.keySecret);
  }
  const publicKey = (decoded(secret, "public-key") ?? "").trim().toLowerCase();
  const privateKey = (decoded(secret, "private-key") ?? "").trim();
  let derived;
  try {
    derived = tls.publicKeyFromPrivate(privateKey);
  } catch (error) {
    throw new Error(`Secret ${entry.keySecret}: private-key is not a raw 32-byte Ed25519 key in hex: ${error.message}`);
  }
  if (derived !== publicKey) throw new Error(`Secret ${entry.keySecret}: public-key is not the public half of private-key`);
  return tls.nodeIdFromPublicKey(publicKey);
}

/** Why the certificate in `secret` must be replaced, or undefined when it is still good. */
function renewalReason(secret, uri, hosts, now) {
  if (!secret) return "missing";
  const pems = { certPem: decoded(secret, "tls.crt") ?? "", keyPem: decoded(secret, "tls.key") ?? "", caPem: decoded(secret, "ca.crt") ?? "" };
  if (pems.caPem.trim() !== ca.certPem.trim()) return "the CA bundle changed";
  let material;
  try {
    material = tls.TlsMaterial.fromPem(pems, { now });
  } catch (error) {
    return `unusable: ${error.message}`;
  }
  if (material.identity.uri !== uri) return `it is for ${material.identity.uri}`;
  const names = sanNames(material.certificate);
  if (names.join(",") !== [...new Set(hosts.map(canonicalHost))].sort().join(",")) return "its DNS names or addresses changed";
  const left = material.validTo.getTime() - now.getTime();
  if (left < renewBeforeDays * 86_400_000) return `it expires at ${material.validTo.toISOString()}, within ${renewBeforeDays} days`;
  return undefined;
}

function sanNames(certificate) {
  return (certificate.subjectAltName ?? "")
    .split(", ")
    .filter((entry) => entry.startsWith("DNS:") || entry.startsWith("IP Address:"))
    .map((entry) => canonicalHost(entry.slice(entry.indexOf(":") + 1)))
    .sort();
}

/** One spelling per address (an IPv6 address prints expanded in a certificate), DNS names in lower case. */
function canonicalHost(host) {
  if (isIP(host) === 6) return new URL(`http://[${host}]`).hostname;
  return host.toLowerCase();
}

async function keep(entry, now) {
  const name = entry.role === "node-agent" ? await nodeName(entry) : entry.name;
  const uri = tls.identityUri(networkId, entry.role, name);
  const existing = await getSecret(entry.secret);
  const reason = renewalReason(existing, uri, entry.hosts, now);
  if (!reason) {
    process.stdout.write(`kept ${entry.secret}: ${uri}, valid until ${new X509Certificate(decoded(existing, "tls.crt")).validTo}\n`);
    return;
  }
  const issued = tls.issueCertificate(ca, { networkId, role: entry.role, name, hosts: entry.hosts, validityDays });
  await putSecret(entry.secret, "kubernetes.io/tls", { "tls.crt": issued.certPem, "tls.key": issued.keyPem, "ca.crt": ca.certPem }, existing);
  process.stdout.write(`issued ${entry.secret}: ${uri} (${reason}), valid until ${new X509Certificate(issued.certPem).validTo}\n`);
}

async function main() {
  const now = new Date();
  const problems = [];
  for (const entry of wanted) {
    try {
      await keep(entry, now);
    } catch (error) {
      problems.push(`${entry.secret}: ${error.message}`);
    }
  }
  for (const problem of problems) process.stderr.write(`mycelium renew: ${problem}\n`);
  process.stdout.write(`renew: ${wanted.length - problems.length} current, ${problems.length} failed\n`);
  process.exitCode = problems.length === 0 ? 0 : 1;
}

main().catch((error) => {
  process.stderr.write(`mycelium renew: ${error.message}\n`);
  process.exitCode = 1;
});
