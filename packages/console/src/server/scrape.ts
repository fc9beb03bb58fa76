import * as http from "node:http";
import * as https from "node:https";
import { readBounded } from "../io/read-bounded";

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
      readBounded(response, maxBytes, `${url}'s answer`).then((body) => resolve(body.toString("utf8")), reject);
    });
    const timer = setTimeout(() => request.destroy(new Error(`${url} did not answer within ${deadlineMs} ms`)), deadlineMs);
    request.on("close", () => clearTimeout(timer));
    request.on("timeout", () => request.destroy(new Error(`${url} did not answer within ${deadlineMs} ms`)));
    request.on("error", reject);
  });
}
