#!/usr/bin/env node
import { otlpRequested, runMain } from "@mycelium/runtime";
import { startNodeAgent } from "./service";

runMain("node-agent", (config) => startNodeAgent(config, { otlp: otlpRequested(process.env) }));
