import * as net from "node:net";

/** Whether `port` can be bound on `host` now. */
export function portIsFree(port: number, host: string): Promise<boolean> {
  return new Promise((resolve) => {
    const server = net.createServer();
    server.once("error", () => resolve(false));
    server.listen(port, host, () => server.close(() => resolve(true)));
  });
}

/** A port the OS says is free now. */
export function freePort(host: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once("error", reject);
    server.listen(0, host, () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

/**
 * Ports for a cluster: the preferred ones when free (so a restarted cluster keeps its addresses),
 * otherwise any free port. Never the same port twice.
 */
export async function choosePorts(preferred: number[], host: string): Promise<number[]> {
  const chosen: number[] = [];
  for (const port of preferred) {
    let candidate = port > 0 && !chosen.includes(port) && (await portIsFree(port, host)) ? port : 0;
    while (candidate === 0 || chosen.includes(candidate)) candidate = await freePort(host);
    chosen.push(candidate);
  }
  return chosen;
}
