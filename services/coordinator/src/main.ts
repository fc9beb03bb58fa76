#!/usr/bin/env node
import { otlpRequested, runMain } from "@mycelium/runtime";
import { startCoordinator } from "./service";

runMain("coordinator", (config) => startCoordinator(config, { otlp: otlpRequested(process.env) }));
