import * as http from "node:http";
import * as https from "node:https";

/** GET a Prometheus /metrics page with a deadline; the text, or an error naming the URL. */
export function fetchMetricsText(url: string, deadlineMs: number, maxBytes = 8 * 1024 * 1024): Promise<string> {
  return new Promise((resolve, reject) => {
    const get = url.startsWith("https:") ? https.get : http.get;
    const request = get(url, { timeout: deadlineMs, headers: { accept: "text/plain" } }, (response) => {
      if (response.statusCode !== 200) {
        response.resume();
        reject(new Error(`${url} answered ${response.statusCode}`));
        return;
      }
      const chunks: Buffer[] = [];
      let size = 0;
      response.on("data", (chunk: Buffer) => {
        size += chunk.length;
        if (size > maxBytes) {
          request.destroy(new Error(`${url} sent more than ${maxBytes} bytes`));
          return;
        }
        chunks.push(chunk);
      });
      response.on("end", () => resolve(Buffer.concat(chunks).toString("utf8")));
      response.on("error", reject);
    });
    const timer = setTimeout(() => request.destroy(new Error(`${url} did not answer within ${deadlineMs} ms`)), deadlineMs);
    request.on("close", () => clearTimeout(timer));
    request.on("timeout", () => request.destroy(new Error(`${url} did not answer within ${deadlineMs} ms`)));
    request.on("error", reject);
  });
}
