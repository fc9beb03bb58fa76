// Init container of every Mycelium pod: puts this pod's identity, TLS material and database URL in one place,
// /run/mycelium (an in-memory emptyDir), so the service container reads fixed paths whatever the pod's ordinal.
//
//   identity/public-key, identity/private-key, identity/node-id   node-agents: the Ed25519 pair and its node id
//   tls/tls.crt, tls/tls.key, tls/ca.crt                          the certificate carrying spiffe://<network>/<role>/<name>
//   database-url                                                  node-agents on PostgreSQL: this node's database
//
// A StatefulSet has one pod template, so per-ordinal Secrets are mounted side by side (<dir>/<ordinal>/…) and this
// script picks the pod's own by linking to it. Links (not copies) keep renewals visible to the service, which
// re-reads its certificate files every few seconds: the Secrets come from cert-manager (certificates.mode=certManager)
// or from the chart's renewer (caSecret, files/renew.js), and the kubelet updates Secret volumes in place.
//
// Everything comes from PREPARE_* variables set by the chart (templates/_pod.tpl). It uses only node: built-ins and
// @mycelium/tls from the image, the library `mycelium certs` and the services use, so the checks here are the ones
// the service will make. It never sees a CA key. Any problem exits non-zero with one line saying what to fix; the pod then stays in Init.
"use strict";

const fs = require("node:fs");
const path = require("node:path");
const crypto = require("node:crypto");

function fail(message) {
  process.stderr.write(`mycelium prepare: ${message}\n`);
  process.exit(1);
}

function setting(name, fallback) {
  const value = (process.env[name] ?? "").trim();
  if (value !== "") return value;
  if (fallback !== undefined) return fallback;
  return fail(`${name} is not set (the chart sets it; is this the chart's pod template?)`);
}

function readText(file, what) {
  try {
    return fs.readFileSync(file, "utf8").trim();
  } catch (error) {
    return fail(`cannot read ${what} at ${file}: ${error.code === "ENOENT" ? "no such file (is the Secret there, with that key?)" : error.message}`);
  }
}

/** Replaces `link` with a symbolic link to `target` (atomically: a temporary link renamed over it). */
function linkTo(target, link) {
  if (!fs.existsSync(target)) fail(`${target} does not exist (is the Secret there, with that key?)`);
  const temporary = `${link}.${crypto.randomBytes(4).toString("hex")}.tmp`;
  fs.symlinkSync(target, temporary);
  fs.renameSync(temporary, link);
}

/** Writes a file atomically with its final mode from the start (keys are never readable by others, not even briefly). */
function writeFile(file, contents, mode) {
  const temporary = `${file}.${crypto.randomBytes(4).toString("hex")}.tmp`;
  fs.writeFileSync(temporary, contents, { mode, flag: "wx" });
  fs.renameSync(temporary, file);
}

function ordinalOf(podName) {
  const match = /-(\d+)$/.exec(podName);
  if (!match) fail(`cannot tell this pod's ordinal from POD_NAME "${podName}" (a StatefulSet pod is named <set>-<ordinal>)`);
  return match[1];
}

const role = setting("PREPARE_ROLE");
const networkId = setting("PREPARE_NETWORK_ID");
const outputDir = setting("PREPARE_OUTPUT_DIR", "/run/mycelium");
const tlsModule = setting("PREPARE_TLS_MODULE", path.join(process.cwd(), "node_modules/@mycelium/tls"));
let tls;
try {
  tls = require(tlsModule);
} catch (error) {
  fail(`cannot load @mycelium/tls from ${tlsModule} (image.workingDir must be where the image keeps the application): ${error.message}`);
}

fs.mkdirSync(path.join(outputDir, "tls"), { recursive: true, mode: 0o700 });
const isNodeAgent = role === "node-agent";
const ordinal = isNodeAgent ? ordinalOf(setting("POD_NAME")) : undefined;

// 1. Identity. A node-agent's certificate name is its node id, derived from its public key.
let name = process.env.PREPARE_NAME || role;
if (isNodeAgent) {
  // Secrets "<prefix>-<ordinal>": created by the renewer (identity.source=generate) or by the operator.
  const keyDir = path.join(setting("PREPARE_IDENTITY_SECRETS_DIR"), ordinal);
  const identityDir = path.join(outputDir, "identity");
  fs.mkdirSync(identityDir, { recursive: true, mode: 0o700 });
  const publicKey = readText(path.join(keyDir, "public-key"), "the node public key").toLowerCase();
  const privateKey = readText(path.join(keyDir, "private-key"), "the node private key");
  let derived;
  try {
    derived = tls.publicKeyFromPrivate(privateKey);
  } catch (error) {
    fail(`the node private key in ${keyDir} is not a raw 32-byte Ed25519 key in hex: ${error.message}`);
  }
  if (derived !== publicKey) fail(`the public key in ${keyDir} is not the public half of the private key next to it`);
  name = tls.nodeIdFromPublicKey(publicKey);
  linkTo(path.join(keyDir, "public-key"), path.join(identityDir, "public-key"));
  linkTo(path.join(keyDir, "private-key"), path.join(identityDir, "private-key"));
  writeFile(path.join(identityDir, "node-id"), name + "\n", 0o644);
}
const expectedUri = tls.identityUri(networkId, role, name);

// 2. TLS material.
const tlsDir = path.join(outputDir, "tls");
const paths = { certPath: path.join(tlsDir, "tls.crt"), keyPath: path.join(tlsDir, "tls.key"), caPath: path.join(tlsDir, "ca.crt") };
const tlsSource = setting("PREPARE_TLS");
if (tlsSource !== "link") fail(`PREPARE_TLS must be "link", got "${tlsSource}"`);
let certificatesDir = setting("PREPARE_CERTIFICATES_DIR");
if (isNodeAgent) certificatesDir = path.join(certificatesDir, ordinal);
linkTo(path.join(certificatesDir, "tls.crt"), paths.certPath);
linkTo(path.join(certificatesDir, "tls.key"), paths.keyPath);
linkTo(path.join(certificatesDir, "ca.crt"), paths.caPath);

// The same checks the service makes at start (key matches, chain to the CA, validity, one URI SAN), plus the one
// only this script can make early: the certificate names this pod.
let material;
try {
  material = tls.TlsMaterial.load(paths);
} catch (error) {
  fail(`the TLS material in ${tlsDir} is unusable: ${error.message}`);
}
if (material.identity.uri !== expectedUri) {
  const hint = isNodeAgent
    ? ` (certificates.certManager: nodeIds[${ordinal}] must be the node id of the key pair of ordinal ${ordinal}, which is ${name})`
    : "";
  fail(`the certificate is for ${material.identity.uri}, but this pod is ${expectedUri}${hint}`);
}

// 3. A node-agent's own PostgreSQL database.
const urlsDir = process.env.PREPARE_DATABASE_URLS_DIR;
if (isNodeAgent && urlsDir) linkTo(path.join(urlsDir, ordinal, "url"), path.join(outputDir, "database-url"));

process.stdout.write(`ready: ${expectedUri}, certificate valid until ${material.certificate.validTo}\n`);
