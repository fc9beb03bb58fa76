#!/usr/bin/env node
// Runs the pods of a rendered chart without Kubernetes. In certificates.mode=caSecret it first runs the rendered
// certificate renewer (files/renew.js with the Job's environment) against a stand-in for the Kubernetes API's Secrets,
// which then holds the certificates and generated node keys. For each Deployment and the first ordinals of each
// StatefulSet it materialises the pod's volumes in a scratch directory (Secrets from the renewer, or made up the way
// an operator or cert-manager would make them), runs the init container's rendered prepare.js, then the service
// container's command with a stand-in image entry point (bin/container-entrypoint.js) that calls loadConfig from
// @mycelium/config exactly as the real main does. So the chart's environment, the scripts and the configuration rules
// are checked together.
//
//   node deploy/helm/test/simulate-pods.js <manifests.json>     (manifestcheck tojson output)
//
// Needs packages/config and packages/tls built (dist/). Absolute paths in the pod (/run/mycelium, /etc/mycelium,
// /var/lib/mycelium, the image's working directory) are moved under the scratch directory.
"use strict";

const fs = require("node:fs");
const http = require("node:http");
const os = require("node:os");
const path = require("node:path");
const { spawn, spawnSync } = require("node:child_process");

const repo = path.resolve(__dirname, "../../..");
const tls = require(path.join(repo, "packages/tls"));

// Key pairs whose node ids deploy/helm/mycelium/ci/cert-manager*-values.yaml list (test keys, used nowhere else).
const fixtureKeys = {
  na98ab7d8cc6caa5b19af: ["8dc34129bcf8dc15adae9ea5db428d286f6d1b3e41c284eeebf63d6c9ff4275b", "f069e039532bf1cef7df1ee95e5f5b41cfe4dcb00e4fb522fc72893d5a73f363"],
  ne7085d4357e675d9bb58: ["45b14e069e62e64396aed6e9a3b863e04007190824022a8cccb7ff437c18b467", "ca5d8a70755ccedaac48aa692b258bb505419ffe93b2deddcc41ed1c89b7b983"],
  n98ad3e64c8c5f1c91556: ["055a01a0e815d5c26c61d16eec85c2d30e858587b978a7af5455639babb851ff", "cfe47ee0d996a4488a3046c73471f14719ca7f120e71efbad2f69ad3bb01675a"],
  na332b7274d72610e22c9: ["513f69b1a1e5040b63dc8cd70195c40c5d2aca11b4ddfe1f3094456c0ff29f58", "22a62ba6578c8da580070ff0afa498fc11c162c91d32f8db4a79d7de240fc247"],
};

const objects = JSON.parse(fs.readFileSync(process.argv[2], "utf8"));
const scratch = fs.mkdtempSync(path.join(os.tmpdir(), "mycelium-pods-"));
const failures = [];
let passed = 0;

const certificates = objects.filter((o) => o.kind === "Certificate");
const configMaps = new Map(objects.filter((o) => o.kind === "ConfigMap").map((o) => [o.metadata.name, o.data]));
const chartSecrets = new Map(objects.filter((o) => o.kind === "Secret").map((o) => [o.metadata.name, o.stringData ?? {}]));
const networkId = (() => {
  const init = objects.find((o) => o.kind === "Deployment").spec.template.spec.initContainers[0];
  return init.env.find((e) => e.name === "PREPARE_NETWORK_ID").value;
})();
const ca = tls.createCertificateAuthority({ networkId });

const made = new Map();
// Secrets the renewer wrote through the stand-in API (name → decoded data).
const renewed = new Map();

/**
 * What the operator (or cert-manager) would have put in each Secret the chart refers to, made once per name.
 * `nodeCertificate` is the Certificate of the pod whose key pair a node-keys Secret holds, when there is one.
 */
function secretData(name, overrides, nodeCertificate) {
  if (overrides?.[name]) return overrides[name];
  if (chartSecrets.has(name)) return chartSecrets.get(name);
  if (renewed.has(name)) return renewed.get(name);
  if (!made.has(name)) made.set(name, makeSecret(name, nodeCertificate));
  return made.get(name);
}

function makeSecret(name, nodeCertificate) {
  const certificate = certificates.find((c) => c.spec.secretName === name);
  if (certificate) {
    const { role, name: identityName } = tls.parseIdentityUri(certificate.spec.uris[0]);
    const issued = tls.issueCertificate(ca, {
      networkId,
      role,
      name: identityName,
      hosts: [...(certificate.spec.dnsNames ?? []), ...(certificate.spec.ipAddresses ?? [])],
    });
    return { "tls.crt": issued.certPem, "tls.key": issued.keyPem, "ca.crt": ca.certPem };
  }
  if (/-key-\d+$/.test(name)) {
    // `mycelium keygen` output; in cert-manager mode the pair whose node id the ordinal's Certificate names.
    const keys = nodeCertificate && fixtureKeys[tls.parseIdentityUri(nodeCertificate.spec.uris[0]).name];
    if (nodeCertificate && !keys) throw new Error(`no fixture key pair for ${nodeCertificate.spec.uris[0]}`);
    const pair = keys ? { publicKeyHex: keys[0], privateKeyHex: keys[1] } : tls.generateNodeKeyPair();
    return { "public-key": pair.publicKeyHex + "\n", "private-key": pair.privateKeyHex + "\n" };
  }
  if (/-db-\d+$/.test(name)) return { url: `postgres://node:pw@postgres.db:5432/${name.replace(/-/g, "_")}` };
  if (/control-store$/.test(name)) return { url: "postgres://mycelium:pw@postgres.db:5432/mycelium_control" };
  if (/(^|-)ca$/.test(name)) return { "tls.crt": ca.certPem, "tls.key": ca.keyPem };
  throw new Error(`the pods refer to Secret ${name}, which this simulation does not know how to make`);
}

function write(file, contents, mode) {
  fs.mkdirSync(path.dirname(file), { recursive: true });
  fs.writeFileSync(file, contents, { mode });
}

function runPod(owner, podName, { overrides, expectFailure } = {}) {
  const root = path.join(scratch, podName + (expectFailure ? "-negative" : ""));
  const app = path.join(root, "app");
  const moved = (value) =>
    String(value)
      .replace(/(^|[,\s])\/run\/mycelium/g, `$1${root}/run/mycelium`)
      .replace(/(^|[,\s])\/etc\/mycelium/g, `$1${root}/etc/mycelium`)
      .replace(/(^|[,\s])\/var\/lib\/mycelium/g, `$1${root}/var/lib/mycelium`)
      .replace(/^\/app\/node_modules\/@mycelium\//, `${repo}/packages/`);
  const pod = owner.spec.template.spec;
  const volumes = new Map(pod.volumes.map((v) => [v.name, v]));
  const secretsMounted = new Map();

  // Volumes, at the mount paths the containers use.
  for (const container of [...pod.initContainers, ...pod.containers]) {
    for (const mount of container.volumeMounts) {
      const dir = moved(mount.mountPath);
      const volume = volumes.get(mount.name);
      fs.mkdirSync(dir, { recursive: true });
      if (!volume || volume.emptyDir) continue; // a claim or an emptyDir: an empty directory
      if (volume.configMap) {
        for (const [key, text] of Object.entries(configMaps.get(volume.configMap.name))) write(path.join(dir, key), text, 0o555);
      } else if (volume.secret) {
        const data = secretData(volume.secret.secretName, overrides);
        secretsMounted.set(mount.name, container.name);
        const items = volume.secret.items ?? Object.keys(data).map((key) => ({ key, path: key }));
        for (const item of items) write(path.join(dir, item.path), data[item.key], 0o440);
      } else if (volume.projected) {
        for (const [ordinal, source] of volume.projected.sources.entries()) {
          const nodeCertificate = certificates.find((c) => c.metadata.name === `${owner.metadata.name}-${ordinal}`);
          const data = secretData(source.secret.name, overrides, nodeCertificate);
          for (const item of source.secret.items) {
            if (data[item.key] === undefined) throw new Error(`Secret ${source.secret.name} has no key ${item.key}`);
            write(path.join(dir, item.path), data[item.key], 0o440);
          }
        }
      }
    }
  }

  const environment = (container) => {
    const env = { PATH: process.env.PATH, HOME: root };
    for (const entry of container.env) {
      if (entry.valueFrom?.fieldRef) env[entry.name] = entry.valueFrom.fieldRef.fieldPath === "metadata.name" ? podName : "default";
      else if (entry.valueFrom?.secretKeyRef) env[entry.name] = secretData(entry.valueFrom.secretKeyRef.name, overrides)[entry.valueFrom.secretKeyRef.key];
      else env[entry.name] = moved(entry.value.replace(/\$\(([A-Za-z_][A-Za-z0-9_]*)\)/g, (_, name) => env[name]));
    }
    return env;
  };

  // The CA key must never reach a service pod, not even its init container.
  const serviceContainer = pod.containers[0];
  for (const volume of pod.volumes) {
    const names = [volume.secret?.secretName, ...(volume.projected?.sources ?? []).map((source) => source.secret?.name)];
    if (names.some((name) => name !== undefined && /(^|-)ca$/.test(name))) failures.push(`${podName}: the pod mounts the CA Secret (volume ${volume.name})`);
  }

  const init = pod.initContainers.find((c) => c.name === "prepare");
  const prepared = spawnSync(init.command[0], init.command.slice(1).map(moved), { cwd: repo, env: environment(init), encoding: "utf8" });
  if (expectFailure) {
    if (prepared.status === 0) failures.push(`${podName}: prepare should have failed (${expectFailure})`);
    else if (!prepared.stderr.includes(expectFailure)) failures.push(`${podName}: prepare failed without saying "${expectFailure}": ${prepared.stderr.trim()}`);
    else passed++;
    return;
  }
  if (prepared.status !== 0) {
    failures.push(`${podName}: prepare failed: ${(prepared.stderr || prepared.stdout).trim()}`);
    return;
  }
  // The service container, with a stand-in entry point that loads the configuration like the real service.
  const service = serviceContainer.command.at(-1);
  write(
    path.join(app, "bin", "container-entrypoint.js"),
    `const { loadConfig } = require(${JSON.stringify(path.join(repo, "packages/config"))});
if (process.argv[2] !== ${JSON.stringify(service)}) throw new Error("started as " + process.argv[2] + ", not ${service}");
const config = loadConfig(process.env, { service: process.argv[2] });
process.stdout.write(JSON.stringify({ name: config.cluster.serviceName, advertise: config.cluster.advertiseAddress, nodeType: config.node.nodeType ?? null, database: config.database.type }));`,
    0o644,
  );
  const env = { ...environment(serviceContainer), PREPARE_OUTPUT_DIR: `${root}/run/mycelium` };
  const ran = spawnSync(serviceContainer.command[0], serviceContainer.command.slice(1).map(moved), { cwd: app, env, encoding: "utf8" });
  if (ran.status !== 0) {
    failures.push(`${podName}: the service did not accept its configuration: ${(ran.stderr || ran.stdout).trim()}`);
    return;
  }
  const summary = JSON.parse(ran.stdout);
  const material = tls.TlsMaterial.load({
    certPath: env.MYCELIUM_TLS_CERT_PATH,
    keyPath: env.MYCELIUM_TLS_KEY_PATH,
    caPath: env.MYCELIUM_TLS_CA_PATH,
  });
  const identity = material.identity;
  if (identity.name !== summary.name) failures.push(`${podName}: certificate name ${identity.name}, but MYCELIUM_NAME resolves to ${summary.name}`);
  const advertisedHost = summary.advertise.replace(/:\d+$/, "");
  if (material.certificate.checkHost(advertisedHost) === undefined) failures.push(`${podName}: the certificate does not cover its advertise address ${summary.advertise}`);
  passed++;
  process.stdout.write(`  ${podName}: ${identity.uri} at ${summary.advertise}${summary.nodeType ? ` (${summary.nodeType}, ${summary.database})` : ""}\n`);
}

/** The Secrets endpoints of the Kubernetes API, enough for files/renew.js. */
function startSecretsApi(namespace) {
  const store = new Map();
  let version = 1;
  const server = http.createServer((request, response) => {
    let body = "";
    request.on("data", (chunk) => (body += chunk));
    request.on("end", () => {
      const answer = (status, value) => response.writeHead(status, { "content-type": "application/json" }).end(JSON.stringify(value));
      const base = `/api/v1/namespaces/${namespace}/secrets`;
      const name = request.url.startsWith(base + "/") ? decodeURIComponent(request.url.slice(base.length + 1)) : undefined;
      if (request.method === "GET" && name) return store.has(name) ? answer(200, store.get(name)) : answer(404, { message: "not found" });
      const secret = body ? JSON.parse(body) : undefined;
      if (request.method === "POST" && request.url === base && !store.has(secret.metadata.name)) {
        store.set(secret.metadata.name, { ...secret, metadata: { ...secret.metadata, resourceVersion: String(version++) } });
        return answer(201, secret);
      }
      if (request.method === "PUT" && name && store.get(name)?.metadata.resourceVersion === secret.metadata.resourceVersion) {
        store.set(name, { ...secret, metadata: { ...secret.metadata, resourceVersion: String(version++) } });
        return answer(200, secret);
      }
      return answer(409, { message: `unexpected ${request.method} ${request.url}` });
    });
  });
  return new Promise((resolve) => server.listen(0, "127.0.0.1", () => resolve({ server, store, url: `http://127.0.0.1:${server.address().port}` })));
}

/** caSecret mode: what the install-time Job of the renewer leaves in the namespace. */
async function runRenewer(job) {
  const container = job.spec.template.spec.containers[0];
  const namespace = "mycelium";
  const api = await startSecretsApi(namespace);
  const caDir = path.join(scratch, "renewer-ca");
  const caSecret = job.spec.template.spec.volumes.find((v) => v.name === "ca").secret.secretName;
  const caData = secretData(caSecret);
  write(path.join(caDir, "tls.crt"), caData["tls.crt"], 0o440);
  write(path.join(caDir, "tls.key"), caData["tls.key"], 0o440);
  const env = { PATH: process.env.PATH, HOME: scratch };
  for (const entry of container.env) env[entry.name] = entry.valueFrom?.fieldRef ? namespace : entry.value;
  Object.assign(env, { RENEW_API_URL: api.url, RENEW_CA_DIR: caDir, RENEW_TLS_MODULE: path.join(repo, "packages/tls") });
  // Node key Secrets the operator makes (identity.source=secret); the renewer makes the others.
  for (const wanted of JSON.parse(env.RENEW_CERTIFICATES)) {
    if (wanted.keySecret && !wanted.generateKey) {
      const data = secretData(wanted.keySecret);
      store(api.store, wanted.keySecret, data);
    }
  }
  const script = path.join(scratch, "renew.js");
  write(script, configMaps.get(job.spec.template.spec.volumes.find((v) => v.name === "scripts").configMap.name)["renew.js"], 0o555);
  const result = await new Promise((resolve) => {
    const child = spawn(process.execPath, [script], { env, stdio: ["ignore", "pipe", "pipe"] });
    let output = "";
    child.stdout.on("data", (chunk) => (output += chunk));
    child.stderr.on("data", (chunk) => (output += chunk));
    child.on("exit", (code) => resolve({ code, output }));
  });
  api.server.close();
  if (result.code !== 0) {
    failures.push(`the certificate renewer failed: ${result.output.trim()}`);
    return;
  }
  for (const [name, secret] of api.store) {
    renewed.set(name, Object.fromEntries(Object.entries(secret.data).map(([key, value]) => [key, Buffer.from(value, "base64").toString("utf8")])));
  }
  passed++;
  process.stdout.write(`  renewer: ${result.output.trim().split("\n").at(-1)}\n`);
}

function store(map, name, data) {
  map.set(name, { metadata: { name, resourceVersion: "0" }, type: "Opaque", data: Object.fromEntries(Object.entries(data).map(([key, value]) => [key, Buffer.from(value).toString("base64")])) });
}

async function main() {
const renewerJob = objects.find((o) => o.kind === "Job" && o.spec.template.spec.containers[0].name === "renew");
if (renewerJob) await runRenewer(renewerJob);

for (const owner of objects.filter((o) => o.kind === "Deployment" || o.kind === "StatefulSet")) {
  if (owner.kind === "Deployment") {
    runPod(owner, `${owner.metadata.name}-7d9f8b6c4-x2x5q`);
    continue;
  }
  const replicas = owner.spec.replicas ?? 1;
  for (let ordinal = 0; ordinal < Math.min(replicas, 2); ordinal++) runPod(owner, `${owner.metadata.name}-${ordinal}`);
  // cert-manager mode: a key pair that is not the one the ordinal's certificate names must stop the pod in Init.
  const keyVolume = owner.spec.template.spec.volumes.find((v) => v.name === "node-keys");
  const hasCertificates = owner.spec.template.spec.volumes.some((v) => v.name === "certificates");
  if (replicas > 0 && keyVolume && hasCertificates) {
    const pair = tls.generateNodeKeyPair();
    const overrides = { [keyVolume.projected.sources[0].secret.name]: { "public-key": pair.publicKeyHex, "private-key": pair.privateKeyHex } };
    runPod(owner, `${owner.metadata.name}-0`, { overrides, expectFailure: "nodeIds[0]" });
  }
}

fs.rmSync(scratch, { recursive: true, force: true });
for (const failure of failures) process.stderr.write(`  FAIL ${failure}\n`);
process.stdout.write(`simulate-pods: ${passed} passed, ${failures.length} failed\n`);
process.exit(failures.length === 0 ? 0 : 1);
}

main().catch((error) => {
  process.stderr.write(`simulate-pods: ${error.stack}\n`);
  process.exit(1);
});
