export { LocalCluster, stopProcess, tail, mainPath, type LocalClusterOptions, type ProcessHandle, type ServiceSpec } from "./local-cluster/local-cluster";
export { ClusterLayout, resolveConnection, defaultDataDir, type ClusterInfo, type NodeEntry, type Connection } from "./local-cluster/cluster-info";
export { choosePorts, freePort } from "./local-cluster/free-port";
export { splitStatements } from "./commands/split-statements";
export { renderTable } from "./output/format";
