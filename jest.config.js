// One Jest run over the whole workspace. Tests import workspace packages from their TypeScript sources
// (so there is one copy of each module); processes started by e2e tests run the built dist/ code.
const fs = require("node:fs");
const path = require("node:path");

const workspaceDirs = ["packages", "services"].flatMap((group) =>
  fs.existsSync(path.join(__dirname, group))
    ? fs.readdirSync(path.join(__dirname, group)).map((name) => path.join(group, name))
    : [],
).concat(["cli"]);

const moduleNameMapper = {};
for (const dir of workspaceDirs) {
  const manifest = path.join(__dirname, dir, "package.json");
  if (!fs.existsSync(manifest)) continue;
  const { name } = JSON.parse(fs.readFileSync(manifest, "utf8"));
  moduleNameMapper[`^${name.replace("/", "\\/")}$`] = `<rootDir>/${dir}/src/index.ts`;
}

const transform = {
  "^.+\\.ts$": ["@swc/jest", { jsc: { parser: { syntax: "typescript" }, target: "es2022" }, module: { type: "commonjs" } }],
};

const common = { rootDir: __dirname, transform, moduleNameMapper, testEnvironment: "node" };

/** @type {import('jest').Config} */
module.exports = {
  projects: [
    {
      ...common,
      displayName: "unit",
      testMatch: ["<rootDir>/{packages,services}/*/test/**/*.test.ts", "<rootDir>/cli/test/**/*.test.ts"],
    },
    {
      ...common,
      displayName: "e2e",
      testMatch: ["<rootDir>/e2e/test/**/*.test.ts"],
      slowTestThreshold: 60,
    },
  ],
  testTimeout: 60_000,
};
