export { startNodeAgent, type RunningNodeAgent, type NodeAgentStartOptions } from "./service";
export { NodeAgent, transactionKey } from "./node-agent";
export { nodeAgentAuthorization } from "./rpc/authorization";
