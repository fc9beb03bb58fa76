// Bundles the web app (src/web) into dist/web at build time: one JavaScript file and one stylesheet,
// served as static files by the dashboard server. No build server runs when the dashboard does.
const fs = require("node:fs");
const path = require("node:path");
const esbuild = require("esbuild");

const root = path.join(__dirname, "..");
const out = path.join(root, "dist", "web");
fs.rmSync(out, { recursive: true, force: true });
fs.mkdirSync(path.join(out, "assets"), { recursive: true });

esbuild
  .build({
    entryPoints: { app: path.join(root, "src", "web", "main.tsx") },
    bundle: true,
    outdir: path.join(out, "assets"),
    format: "iife",
    target: ["es2020"],
    jsx: "automatic",
    jsxImportSource: "preact",
    minify: true,
    sourcemap: "linked",
    legalComments: "linked",
    logLevel: "warning",
  })
  .then(() => {
    fs.copyFileSync(path.join(root, "src", "web", "index.html"), path.join(out, "index.html"));
    const size = (file) => fs.statSync(path.join(out, "assets", file)).size;
    process.stdout.write(`web app: app.js ${Math.round(size("app.js") / 1024)} KiB, app.css ${Math.round(size("app.css") / 1024)} KiB\n`);
  })
  .catch((error) => {
    process.stderr.write(`${error.message}\n`);
    process.exit(1);
  });
