#!/usr/bin/env node
// A stand-in for the Kubernetes API that Helm's `lookup` reads during `helm template --dry-run=server`: it serves
// the StatefulSets of an earlier rendering of the chart (as if installed), discovery for apps/v1, and 404 for the
// rest. check.sh renders an upgrade against it, so the chart's upgrade checks (templates/validate.yaml) run for real.
//
//   node upgrade-api.js <installed manifests.json> <kubeconfig to write>     (runs until SIGTERM)
"use strict";

const fs = require("node:fs");
const http = require("node:http");

const [manifestsPath, kubeconfigPath] = process.argv.slice(2);
const installed = JSON.parse(fs.readFileSync(manifestsPath, "utf8")).filter((o) => o.kind === "StatefulSet");
const namespace = "mycelium";

const server = http.createServer((request, response) => {
  const answer = (status, value) => response.writeHead(status, { "content-type": "application/json" }).end(JSON.stringify(value));
  const url = request.url.split("?")[0];
  if (url === "/apis/apps/v1") {
    return answer(200, { kind: "APIResourceList", apiVersion: "v1", groupVersion: "apps/v1", resources: [{ name: "statefulsets", singularName: "statefulset", namespaced: true, kind: "StatefulSet", verbs: ["get", "list"] }] });
  }
  const match = /^\/apis\/apps\/v1\/namespaces\/([^/]+)\/statefulsets\/([^/]+)$/.exec(url);
  const found = match && match[1] === namespace && installed.find((o) => o.metadata.name === match[2]);
  if (found) return answer(200, { ...found, metadata: { ...found.metadata, namespace } });
  return answer(404, { kind: "Status", apiVersion: "v1", status: "Failure", reason: "NotFound", code: 404, message: `${url} not found` });
});
server.listen(0, "127.0.0.1", () => {
  const { port } = server.address();
  fs.writeFileSync(
    kubeconfigPath,
    `apiVersion: v1
kind: Config
clusters: [{name: stand-in, cluster: {server: "http://127.0.0.1:${port}"}}]
users: [{name: stand-in, user: {token: stand-in}}]
contexts: [{name: stand-in, context: {cluster: stand-in, user: stand-in, namespace: ${namespace}}}]
current-context: stand-in
`,
    { mode: 0o600 },
  );
});
process.on("SIGTERM", () => server.close(() => process.exit(0)));
