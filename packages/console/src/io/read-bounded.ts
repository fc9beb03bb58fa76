/**
 * Everything a stream delivers, refusing more than `maxBytes` (the stream is destroyed and the promise
 * rejects with `status` 413, for HTTP servers to answer with).
 */
export function readBounded(stream: NodeJS.ReadableStream & { destroy?: (error?: Error) => void }, maxBytes: number, what: string): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    stream.on("data", (chunk: Buffer | string) => {
      const bytes = typeof chunk === "string" ? Buffer.from(chunk) : chunk;
      size += bytes.length;
      if (size > maxBytes) {
        const error = Object.assign(new Error(`${what} is over ${maxBytes} bytes`), { status: 413 });
        reject(error);
        stream.destroy?.(error);
        return;
      }
      chunks.push(bytes);
    });
    stream.on("end", () => resolve(Buffer.concat(chunks)));
    stream.on("error", (error: Error) => reject(Object.assign(error, { status: (error as { status?: number }).status ?? 400 })));
  });
}
