// Lets a plain `node` child process (crash tests) load the TypeScript sources directly, the way Jest does,
// so the tests do not depend on a fresh `dist/` build. Usage: node -r <this file> script.ts
"use strict";
const fs = require("node:fs");
const path = require("node:path");
const Module = require("node:module");
const swc = require("@swc/core");

const root = path.resolve(__dirname, "../../../..");
const workspaceSources = {};
for (const group of ["packages", "services"]) {
  const dir = path.join(root, group);
  if (!fs.existsSync(dir)) continue;
  for (const name of fs.readdirSync(dir)) {
    const manifest = path.join(dir, name, "package.json");
    if (!fs.existsSync(manifest)) continue;
    const pkg = JSON.parse(fs.readFileSync(manifest, "utf8"));
    workspaceSources[pkg.name] = path.join(dir, name, "src", "index.ts");
  }
}

const originalResolve = Module._resolveFilename;
Module._resolveFilename = function (request, ...rest) {
  const mapped = workspaceSources[request];
  return originalResolve.call(this, mapped ?? request, ...rest);
};

require.extensions[".ts"] = function (module, filename) {
  const { code } = swc.transformSync(fs.readFileSync(filename, "utf8"), {
    filename,
    jsc: { parser: { syntax: "typescript" }, target: "es2022" },
    module: { type: "commonjs" },
    sourceMaps: "inline",
  });
  module._compile(code, filename);
};
