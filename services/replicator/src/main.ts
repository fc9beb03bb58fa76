#!/usr/bin/env node
import { otlpRequested, runMain } from "@mycelium/runtime";
import { startReplicator } from "./service";

runMain("replicator", (config) => startReplicator(config, { otlp: otlpRequested(process.env) }));
