import type * as http from "node:http";

/**
 * Pages following the dashboard over server-sent events. Bounded: at most `maxClients` at once, and a
 * page that does not keep up (more than `maxBufferedBytes` waiting in its socket) is dropped instead
 * of buffered without end; its EventSource reconnects by itself.
 */
export class EventStream {
  private readonly clients = new Set<http.ServerResponse>();
  private readonly keepalive: NodeJS.Timeout;

  constructor(
    private readonly maxClients: number,
    private readonly maxBufferedBytes = 4 * 1024 * 1024,
  ) {
    // A comment line now and then keeps proxies from closing an idle stream.
    this.keepalive = setInterval(() => {
      for (const client of this.clients) this.write(client, ": keepalive\n\n");
    }, 15_000);
    this.keepalive.unref();
  }

  /** Start streaming to a response; false when the limit is reached. */
  add(response: http.ServerResponse): boolean {
    if (this.clients.size >= this.maxClients) return false;
    response.writeHead(200, { "content-type": "text/event-stream; charset=utf-8", "cache-control": "no-store", connection: "keep-alive", "x-accel-buffering": "no" });
    // Reconnect after a second when the stream drops.
    response.write("retry: 1000\n\n");
    this.clients.add(response);
    response.on("close", () => this.clients.delete(response));
    return true;
  }

  broadcast(event: string, data: unknown): void {
    const message = frame(event, data);
    for (const client of this.clients) this.write(client, message);
  }

  send(response: http.ServerResponse, event: string, data: unknown): void {
    this.write(response, frame(event, data));
  }

  get size(): number {
    return this.clients.size;
  }

  closeAll(): void {
    clearInterval(this.keepalive);
    for (const client of this.clients) client.end();
    this.clients.clear();
  }

  private write(client: http.ServerResponse, message: string): void {
    if (client.writableLength > this.maxBufferedBytes) {
      this.clients.delete(client);
      client.destroy();
      return;
    }
    client.write(message);
  }
}

function frame(event: string, data: unknown): string {
  return `event: ${event}\ndata: ${JSON.stringify(data)}\n\n`;
}
