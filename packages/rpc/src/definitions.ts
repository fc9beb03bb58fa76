/**
 * Types over the service definitions ts-proto generates for grpc-js (`XxxServiceService` objects):
 * each method has a path, streaming flags and serializers typed with its request and response.
 */
export interface MethodDefinition<Req, Res> {
  path: string;
  requestStream: boolean;
  responseStream: boolean;
  requestSerialize: (value: Req) => Buffer;
  requestDeserialize: (bytes: Buffer) => Req;
  responseSerialize: (value: Res) => Buffer;
  responseDeserialize: (bytes: Buffer) => Res;
}

export type ServiceDefinition = Record<string, MethodDefinition<any, any>>;

export type RequestOf<M> = M extends MethodDefinition<infer Req, any> ? Req : never;
export type ResponseOf<M> = M extends MethodDefinition<any, infer Res> ? Res : never;

export type UnaryMethods<D extends ServiceDefinition> = {
  [K in keyof D]: D[K]["responseStream"] extends false ? K : never;
}[keyof D];

export type StreamingMethods<D extends ServiceDefinition> = {
  [K in keyof D]: D[K]["responseStream"] extends true ? K : never;
}[keyof D];

/** `/mycelium.router.v1.ShardRouterService/Route` → `ShardRouterService/Route`, for spans, logs and metrics. */
export function shortMethodName(path: string): string {
  const [, service = "", method = ""] = /^\/(?:.*\.)?([^./]+)\/([^/]+)$/.exec(path) ?? [];
  return service && method ? `${service}/${method}` : path;
}
