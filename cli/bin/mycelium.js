#!/usr/bin/env node
// The installed command. It exists before the first build (so installing links it), and runs the
// compiled CLI, which `pnpm build` writes to dist/.
require("../dist/main.js");
