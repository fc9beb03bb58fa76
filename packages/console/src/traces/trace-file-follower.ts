import * as fs from "node:fs";
import type { SpanRecord } from "@mycelium/telemetry";
import { parseSpanLine } from "./core/span-lines";

export interface TraceFileFollowerOptions {
  path: string;
  /** Start at the end of the file (a tail) or at its beginning. @default "end" */
  from?: "start" | "end";
  /** How often the file is checked for more. @default 100 */
  intervalMs?: number;
  /** Most bytes read per check, so a huge backlog is read in steps. @default 4 MiB */
  maxReadBytes?: number;
  onSpans: (spans: SpanRecord[]) => void;
  onError?: (error: Error) => void;
}

/**
 * Follows a JSON-lines trace file as services append to it: reads what was added since the last
 * check, keeps a partial last line for the next, and starts over when the file is replaced or
 * truncated. A missing file is waited for (the cluster may not have written a span yet).
 */
export class TraceFileFollower {
  private offset = -1;
  private inode = -1;
  private partial = "";
  private timer: NodeJS.Timeout | null = null;
  private reading = false;
  private stopped = false;
  private readonly maxReadBytes: number;

  constructor(private readonly options: TraceFileFollowerOptions) {
    this.maxReadBytes = options.maxReadBytes ?? 4 * 1024 * 1024;
  }

  start(): this {
    this.check();
    this.timer = setInterval(() => this.check(), this.options.intervalMs ?? 100);
    this.timer.unref();
    return this;
  }

  stop(): void {
    this.stopped = true;
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }

  /** Read whatever is there now (also called by the timer). */
  check(): void {
    if (this.reading || this.stopped) return;
    this.reading = true;
    try {
      this.readAvailable();
    } catch (error) {
      this.options.onError?.(error as Error);
    } finally {
      this.reading = false;
    }
  }

  private readAvailable(): void {
    let stat: fs.Stats;
    try {
      stat = fs.statSync(this.options.path);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === "ENOENT") {
        // Not written yet; a file created later is read from its start.
        if (this.offset < 0) this.offset = 0;
        this.inode = -1;
        return;
      }
      throw error;
    }
    if (this.offset < 0) this.offset = (this.options.from ?? "end") === "end" ? stat.size : 0;
    if (this.inode !== -1 && stat.ino !== this.inode) this.restart();
    if (stat.size < this.offset) this.restart();
    this.inode = stat.ino;
    if (stat.size === this.offset) return;
    const length = Math.min(stat.size - this.offset, this.maxReadBytes);
    const buffer = Buffer.alloc(length);
    const fd = fs.openSync(this.options.path, "r");
    let read: number;
    try {
      read = fs.readSync(fd, buffer, 0, length, this.offset);
    } finally {
      fs.closeSync(fd);
    }
    this.offset += read;
    const text = this.partial + buffer.subarray(0, read).toString("utf8");
    const lines = text.split("\n");
    this.partial = lines.pop() ?? "";
    // A "line" longer than a read step is no span record; drop it rather than hold it forever.
    if (this.partial.length > this.maxReadBytes) this.partial = "";
    const spans: SpanRecord[] = [];
    for (const line of lines) {
      const span = parseSpanLine(line);
      if (span) spans.push(span);
    }
    if (spans.length > 0) this.options.onSpans(spans);
  }

  private restart(): void {
    this.offset = 0;
    this.partial = "";
  }
}

/** Every span of a trace file, read once (for `mycelium traces show`), line by line. */
export async function readTraceFile(path: string, onSpan: (span: SpanRecord) => void): Promise<void> {
  const readline = await import("node:readline");
  const stream = fs.createReadStream(path, { encoding: "utf8" });
  const lines = readline.createInterface({ input: stream, crlfDelay: Infinity });
  for await (const line of lines) {
    const span = parseSpanLine(line);
    if (span) onSpan(span);
  }
}
