/**
 * Reads a stream ahead into a bounded buffer and yields everything buffered so far as one batch.
 *
 * A primary sends its change log as it commits, a few entries per message under a steady load; the
 * replicator's work per message (apply on every secondary, then acknowledge) costs round trips, not
 * entries. Handling messages one by one, a replicator slower than the commit rate falls further behind
 * with every message; handling whatever has arrived as one batch, it catches up in a round.
 *
 * The buffer holds at most `maxBuffered` messages; beyond that the source is not read, so transport flow
 * control slows the sender. Stopping early does not wait for the source (a pending read may never
 * settle): the caller cancels the source itself, e.g. by aborting its call.
 */
export async function* coalesce<T>(source: AsyncIterable<T>, maxBuffered: number): AsyncGenerator<T[]> {
  if (!Number.isInteger(maxBuffered) || maxBuffered < 1) throw new RangeError(`maxBuffered must be a positive integer, got ${maxBuffered}`);
  const iterator = source[Symbol.asyncIterator]();
  const buffered: T[] = [];
  let finished = false;
  let stopped = false;
  let failure: { error: unknown } | null = null;
  let wakeConsumer = null as (() => void) | null;
  let wakeReader = null as (() => void) | null; // set by the reader while the buffer is full
  const signalConsumer = () => {
    wakeConsumer?.();
    wakeConsumer = null;
  };

  const reader = (async () => {
    try {
      while (!stopped) {
        while (buffered.length >= maxBuffered && !stopped) await new Promise<void>((resolve) => (wakeReader = resolve));
        if (stopped) break;
        const next = await iterator.next();
        if (next.done) break;
        buffered.push(next.value);
        signalConsumer();
      }
    } catch (error) {
      failure = { error };
    } finally {
      finished = true;
      signalConsumer();
    }
  })();

  try {
    for (;;) {
      if (buffered.length > 0) {
        const batch = buffered.splice(0, buffered.length);
        wakeReader?.();
        wakeReader = null;
        yield batch;
        continue;
      }
      if (finished) break;
      await new Promise<void>((resolve) => (wakeConsumer = resolve));
    }
    await reader;
    if (failure) throw (failure as { error: unknown }).error;
  } finally {
    stopped = true;
    wakeReader?.();
    if (!finished) void Promise.resolve(iterator.return?.()).catch(() => undefined);
  }
}
