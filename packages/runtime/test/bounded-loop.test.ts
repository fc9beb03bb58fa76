/**
 * BoundedLoop under Jest's fake clock: run times are checked exactly (jitter 0), without real waiting.
 */
import { BoundedLoop, type BoundedLoopOptions } from "@mycelium/runtime";
import type { Logger } from "@mycelium/telemetry";

interface Deferred {
  promise: Promise<void>;
  resolve: () => void;
  reject: (error: unknown) => void;
}

function deferred(): Deferred {
  let resolve!: () => void;
  let reject!: (error: unknown) => void;
  const promise = new Promise<void>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

function fakeLogger(): Logger & { warn: jest.Mock } {
  return { warn: jest.fn(), info: jest.fn(), error: jest.fn(), debug: jest.fn() } as unknown as Logger & { warn: jest.Mock };
}

const loops: BoundedLoop[] = [];

function loop(options: Partial<BoundedLoopOptions>, task: (signal: AbortSignal) => Promise<void>): BoundedLoop {
  const made = new BoundedLoop({ name: "test loop", intervalMs: 100, jitter: 0, logger: fakeLogger(), ...options }, task);
  loops.push(made);
  return made;
}

/** A task that records when each run started and how many ran at once. */
function recorder() {
  const starts: number[] = [];
  let running = 0;
  let maxRunning = 0;
  return {
    starts,
    get maxRunning() {
      return maxRunning;
    },
    wrap(body: () => Promise<void> = async () => {}) {
      return async () => {
        starts.push(Date.now());
        running++;
        maxRunning = Math.max(maxRunning, running);
        try {
          await body();
        } finally {
          running--;
        }
      };
    },
  };
}

let t0 = 0;
beforeEach(() => {
  jest.useFakeTimers();
  t0 = Date.now();
});
afterEach(async () => {
  for (const l of loops.splice(0)) {
    const stopping = l.stop();
    await jest.runOnlyPendingTimersAsync();
    await stopping.catch(() => undefined);
  }
  jest.useRealTimers();
});

const advance = (ms: number) => jest.advanceTimersByTimeAsync(ms);

describe("BoundedLoop", () => {
  it("runs again and again, intervalMs after the end of the previous run", async () => {
    const r = recorder();
    loop({ intervalMs: 100 }, r.wrap(async () => {
      await new Promise((resolve) => setTimeout(resolve, 30)); // each run takes 30 ms
    })).start();
    await advance(99);
    expect(r.starts).toEqual([]);
    await advance(1);
    expect(r.starts.map((t) => t - t0)).toEqual([100]);
    await advance(1000);
    // 100, then 30 ms of work and 100 ms of pause each time.
    expect(r.starts.map((t) => t - t0)).toEqual([100, 230, 360, 490, 620, 750, 880, 1010]);
  });

  it("runImmediately runs at once", async () => {
    const r = recorder();
    loop({ intervalMs: 100, runImmediately: true }, r.wrap()).start();
    await advance(0);
    expect(r.starts.map((t) => t - t0)).toEqual([0]);
    await advance(100);
    expect(r.starts.map((t) => t - t0)).toEqual([0, 100]);
  });

  it("runs one at a time: a long run delays the next, and trigger() during a run does nothing", async () => {
    const gate = deferred();
    const r = recorder();
    const l = loop({ intervalMs: 100 }, r.wrap(() => gate.promise)).start();
    await advance(100);
    expect(r.starts).toHaveLength(1);
    l.trigger();
    await advance(10_000);
    l.trigger();
    await advance(0);
    expect(r.starts).toHaveLength(1);
    gate.resolve();
    await advance(0);
    const endOfFirst = Date.now();
    await advance(100);
    expect(r.starts.map((t) => t - t0)).toEqual([100, endOfFirst + 100 - t0]);
    expect(r.maxRunning).toBe(1);
  });

  it("trigger() runs now instead of waiting for the interval, and the interval restarts after that run", async () => {
    const r = recorder();
    const l = loop({ intervalMs: 10_000 }, r.wrap()).start();
    await advance(2_000);
    expect(r.starts).toEqual([]);
    l.trigger();
    await advance(0);
    expect(r.starts.map((t) => t - t0)).toEqual([2_000]);
    // The run that was due at 10 000 was replaced: the next one is 10 000 after the triggered run.
    await advance(9_999);
    expect(r.starts).toHaveLength(1);
    await advance(1);
    expect(r.starts.map((t) => t - t0)).toEqual([2_000, 12_000]);
  });

  it("backs off after failures (doubling, capped at maxBackoffMs), logs each with the loop's name, and recovers after a success", async () => {
    const logger = fakeLogger();
    const r = recorder();
    let fail = true;
    loop({ intervalMs: 100, maxBackoffMs: 500, logger }, r.wrap(async () => {
      if (fail) throw new Error("store down");
    })).start();
    await advance(100 + 200 + 400 + 500 + 500);
    // Delays after failures 1..4: 200, 400, 500 (capped), 500.
    expect(r.starts.map((t) => t - t0)).toEqual([100, 300, 700, 1200, 1700]);
    expect(logger.warn).toHaveBeenCalledTimes(5);
    const [fields, message] = logger.warn.mock.calls[0];
    expect(message).toBe("background task failed");
    expect(fields).toMatchObject({ loop: "test loop", failures: 1 });
    expect((fields as { err: Error }).err.message).toBe("store down");
    expect(logger.warn.mock.calls.map(([f]) => (f as { failures: number }).failures)).toEqual([1, 2, 3, 4, 5]);

    fail = false;
    await advance(500); // the run at 2200 succeeds
    await advance(100); // so the next comes one interval later
    expect(r.starts.map((t) => t - t0)).toEqual([100, 300, 700, 1200, 1700, 2200, 2300]);
    expect(logger.warn).toHaveBeenCalledTimes(5);
  });

  it("the default backoff cap is 8 × intervalMs", async () => {
    const r = recorder();
    loop({ intervalMs: 100 }, r.wrap(async () => {
      throw new Error("no");
    })).start();
    await advance(100 + 200 + 400 + 800 + 800 + 800);
    expect(r.starts.map((t) => t - t0)).toEqual([100, 300, 700, 1500, 2300, 3100]);
  });

  it("jitter varies each delay within ±jitter of the base", async () => {
    const random = jest.spyOn(Math, "random");
    try {
      random.mockReturnValue(0); // the shortest delay: base × (1 − jitter)
      const r = recorder();
      loop({ intervalMs: 1000, jitter: 0.2 }, r.wrap()).start(); // first delay drawn now
      random.mockReturnValue(0.999_999); // the longest: base × (1 + jitter), for the delay after run 1
      await advance(800);
      expect(r.starts.map((t) => t - t0)).toEqual([800]);
      await advance(1200);
      expect(r.starts.map((t) => t - t0)).toEqual([800, 2000]);
    } finally {
      random.mockRestore();
    }
  });

  it("stop() waits for the run in progress, aborts its signal, and no run starts after", async () => {
    const gate = deferred();
    const r = recorder();
    let signal: AbortSignal | null = null;
    const l = loop({ intervalMs: 100 }, async (s) => {
      signal = s;
      await r.wrap(() => gate.promise)();
    }).start();
    await advance(100);
    expect(r.starts).toHaveLength(1);

    let stopped = false;
    const stopping = l.stop().then(() => {
      stopped = true;
    });
    await advance(1000);
    expect(signal!.aborted).toBe(true);
    expect(stopped).toBe(false);
    gate.resolve();
    await stopping;
    expect(stopped).toBe(true);

    l.trigger();
    await advance(100_000);
    expect(r.starts).toHaveLength(1);
  });

  it("stop() between runs is immediate and cancels the next run", async () => {
    const r = recorder();
    const l = loop({ intervalMs: 100 }, r.wrap()).start();
    await advance(150);
    expect(r.starts).toHaveLength(1);
    await l.stop();
    await advance(100_000);
    expect(r.starts).toHaveLength(1);
  });

  it("a run failing because it was stopped is not logged", async () => {
    const logger = fakeLogger();
    const l = loop({ intervalMs: 100, logger }, (signal) => new Promise<void>((_, reject) => {
      signal.addEventListener("abort", () => reject(new Error("aborted")), { once: true });
    })).start();
    await advance(100);
    await l.stop();
    expect(logger.warn).not.toHaveBeenCalled();
  });

  // BUG (packages/runtime/src/bounded-loop.ts, start() l.32-35 / schedule() l.59-61): schedule() overwrites
  // this.timer without clearing a timer already pending, and start() does not check it already started.
  // trigger() before start() (or start() twice) leaves two timers, so two chains of runs exist and runs
  // overlap, breaking "one run at a time". Fix: in schedule(), `if (this.timer) clearTimeout(this.timer)`,
  // and make start() a no-op after the first call.
  test("trigger() before start() still runs one at a time", async () => {
    const gate = deferred();
    const r = recorder();
    const l = loop({ intervalMs: 100 }, r.wrap(() => gate.promise));
    l.trigger();
    l.start();
    try {
      await advance(1000);
      expect(r.maxRunning).toBe(1);
      expect(r.starts).toHaveLength(1);
    } finally {
      gate.resolve();
    }
  });
});
