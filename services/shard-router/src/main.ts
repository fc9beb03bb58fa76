#!/usr/bin/env node
import { otlpRequested, runMain } from "@mycelium/runtime";
import { startShardRouter } from "./service";

runMain("shard-router", (config) => startShardRouter(config, { otlp: otlpRequested(process.env) }));
