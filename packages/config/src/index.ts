export type { ServiceName, MyceliumConfig, ConfigGroup, NodeType, DatabaseType, DatabaseSslMode, ReplicationMode, LogLevel } from "./types";
export { serviceNames } from "./types";
export { loadConfig } from "./load-config";
export { ConfigError, type ConfigIssue } from "./config-error";
export { describeConfig, type ConfigEntry } from "./describe-config";
export { configVariables, faultPointNames, type FaultPointName, type VariableSpec } from "./variables";
export { renderConfigurationReference } from "./render-configuration-reference";
export { parseDurationMs, parseSizeBytes, formatDurationMs, formatSizeBytes } from "./units";
export { compareVersions, splitHostPort } from "./value-kinds";
