export { MyceliumServer, type CallContext, type ServerOptions, type ServiceHandlers, type UnaryHandler, type StreamHandler, type Listening } from "./server";
export { ClientPool, type ClientPoolOptions, type CallOptions, type StreamOptions, type PromiseClient } from "./client";
export { MyceliumError, errorCodes, isMyceliumError, fromServiceError, toStatus, type ErrorCode, type MyceliumErrorOptions } from "./errors";
export { authorize, isAuthorized, type AuthorizationTable } from "./authorization";
export { backoffDelayMs, defaultBackoff, sleep, type BackoffPolicy } from "./backoff";
export { networkIdKey, protocolVersionKey, parseVersion, compareVersions } from "./protocol";
export { shortMethodName, type ServiceDefinition, type MethodDefinition } from "./definitions";
