import * as fs from "node:fs";
import type * as http from "node:http";
import * as path from "node:path";

const contentTypes: Record<string, string> = {
  ".html": "text/html; charset=utf-8",
  ".js": "text/javascript; charset=utf-8",
  ".css": "text/css; charset=utf-8",
  ".svg": "image/svg+xml",
  ".png": "image/png",
  ".map": "application/json; charset=utf-8",
};

/** The web app `pnpm build` bundled into this package's dist/web. */
export function staticAssetsDir(): string {
  let dir = __dirname;
  for (let i = 0; i < 5; i++) {
    const manifest = path.join(dir, "package.json");
    if (fs.existsSync(manifest) && (JSON.parse(fs.readFileSync(manifest, "utf8")) as { name?: string }).name === "@mycelium/console") return path.join(dir, "dist", "web");
    dir = path.dirname(dir);
  }
  return path.join(__dirname, "..", "web");
}

/** A file of the built app, or index.html for the page itself; never anything outside `root`. */
export function serveStatic(root: string, pathname: string, response: http.ServerResponse): void {
  const relative = pathname === "/" ? "index.html" : decodeURIComponent(pathname).replace(/^\/+/, "");
  const file = path.resolve(root, relative);
  if (!file.startsWith(path.resolve(root) + path.sep)) {
    response.writeHead(404, { "content-type": "text/plain" }).end("not found\n");
    return;
  }
  fs.readFile(file, (error, data) => {
    if (error) {
      response.writeHead(404, { "content-type": "text/plain" }).end("not found\n");
      return;
    }
    const type = contentTypes[path.extname(file)] ?? "application/octet-stream";
    // The bundle's names do not change between builds; let the page always get the current one.
    response.writeHead(200, { "content-type": type, "cache-control": "no-cache" }).end(data);
  });
}
