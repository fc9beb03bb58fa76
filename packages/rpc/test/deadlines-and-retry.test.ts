/**
 * Deadlines (the client's, and the server's default for calls without one) and the client's retry of
 * idempotent calls, over real grpc-js and mutual TLS on 127.0.0.1.
 */
import { MyceliumError } from "@mycelium/rpc";
import {
  Certificates,
  Harness,
  aborted,
  deferred,
  event,
  freePort,
  metricValue,
  rejection,
  statusResponse,
  streamService,
  unaryService,
  until,
} from "./support/fixtures";

let certificates: Certificates;
let harness: Harness;

beforeAll(() => {
  certificates = new Certificates();
});
afterAll(() => certificates.remove());
beforeEach(() => {
  harness = new Harness(certificates);
});
afterEach(() => harness.close());

/** Quick retries with room for many attempts, so tests wait on events rather than on the policy. */
const quickRetry = { initialDelayMs: 20, maxDelayMs: 100, multiplier: 2, maxAttempts: 200 };

describe("deadlines", () => {
  it("a call past the client's deadline fails with DEADLINE_EXCEEDED naming the method and address, and the handler's signal aborts", async () => {
    const seen = deferred<AbortSignal>();
    harness.handlers.getStatus = async (_request, call) => {
      seen.resolve(call.signal);
      await aborted(call.signal);
      throw call.signal.reason;
    };
    const { address } = await harness.server();
    const { pool } = harness.pool();
    const error = await rejection(pool.service(unaryService, address).getStatus({}, { deadlineMs: 300 }));
    expect(error).toBeInstanceOf(MyceliumError);
    expect(error.code).toBe("DEADLINE_EXCEEDED");
    expect(error.message).toContain(`ReplicatorService/GetStatus to ${address}`);
    const signal = await seen.promise;
    await aborted(signal);
    expect(signal.aborted).toBe(true);
  });

  it("the handler sees the client's deadline", async () => {
    const deadlines: number[] = [];
    harness.handlers.getStatus = async (_request, call) => {
      deadlines.push(call.deadlineMs);
      return statusResponse("ok");
    };
    const { address } = await harness.server({ defaultDeadlineMs: 3_600_000 });
    const { pool } = harness.pool();
    const before = Date.now();
    await pool.service(unaryService, address).getStatus({}, { deadlineMs: 5000 });
    // The client's 5 s deadline (give or take transit), not the server's one-hour default.
    expect(deadlines[0]).toBeGreaterThan(before + 4000);
    expect(deadlines[0]).toBeLessThan(before + 60_000);
  });

  it("a call arriving without a deadline gets the server's default, which aborts the handler's signal with DEADLINE_EXCEEDED", async () => {
    const reason = deferred<unknown>();
    const finished = deferred();
    harness.handlers.subscribe = async function* (_request, call) {
      try {
        yield event(1);
        reason.resolve(await aborted(call.signal));
      } finally {
        finished.resolve();
      }
    };
    const { address } = await harness.server({ defaultDeadlineMs: 300 });
    const { pool } = harness.pool();
    const received: number[] = [];
    // ClientPool streams carry no deadline unless asked.
    const consumed = (async () => {
      for await (const message of pool.service(streamService, address).subscribe({ txId: "" })) received.push(message.sequence);
    })().catch((error: unknown) => error);
    const why = (await reason.promise) as MyceliumError;
    expect(why).toBeInstanceOf(MyceliumError);
    expect(why.code).toBe("DEADLINE_EXCEEDED");
    await finished.promise;
    await consumed;
    expect(received).toEqual([1]);
  });

  // BUG (packages/rpc/src/server.ts, wrapStream l.219-241): when the server ends a stream because its
  // signal aborted (default deadline, shutdown), the loop breaks and call.end() sends status OK, so the
  // subscriber sees a normal end of stream and cannot tell it was cut off. The status should carry the
  // abort reason (here DEADLINE_EXCEEDED).
  test("a stream cut by the server's default deadline ends with DEADLINE_EXCEEDED, not a clean end", async () => {
    harness.handlers.subscribe = async function* (_request, call) {
      yield event(1);
      await aborted(call.signal);
      yield event(2);
    };
    const { address } = await harness.server({ defaultDeadlineMs: 300 });
    const { pool } = harness.pool();
    const error = await rejection((async () => {
      for await (const _ of pool.service(streamService, address).subscribe({ txId: "" })) void _;
    })());
    expect(error.code).toBe("DEADLINE_EXCEEDED");
  });
});

describe("retry", () => {
  it("an idempotent call to an address where no server listens yet succeeds once the server starts within the deadline", async () => {
    const port = await freePort();
    const address = `127.0.0.1:${port}`;
    const { pool, telemetry } = harness.pool();
    const call = pool.service(unaryService, address).getStatus({}, { idempotent: true, deadlineMs: 20_000, backoff: quickRetry });
    // It has failed at least once against the closed port before the server exists.
    await until(async () => (await metricValue(telemetry, "mycelium_rpc_client_retries_total")) >= 1, "a retry");
    await harness.server({}, port);
    await expect(call).resolves.toEqual(statusResponse(`spiffe://net-a/coordinator/caller-coordinator`));
  });

  it("after failed calls to a peer that was down, the first call once it is back is delivered (no stale reconnect backoff)", async () => {
    const port = await freePort();
    const address = `127.0.0.1:${port}`;
    const { pool } = harness.pool();
    const client = pool.service(unaryService, address);
    // Several failures: a grpc-js channel would now be waiting out a reconnect backoff of seconds.
    for (let i = 0; i < 6; i++) {
      expect((await rejection(client.getStatus({}, { deadlineMs: 5000 }))).code).toBe("UNAVAILABLE");
      await new Promise((resolve) => setTimeout(resolve, 150));
    }
    await harness.server({}, port);
    await expect(client.getStatus({}, { deadlineMs: 5000 })).resolves.toEqual(statusResponse(`spiffe://net-a/coordinator/caller-coordinator`));
  });

  it("a non-idempotent call to an address where no server listens fails at once with UNAVAILABLE naming the address", async () => {
    const address = `127.0.0.1:${await freePort()}`;
    const { pool, telemetry } = harness.pool();
    const error = await rejection(pool.service(unaryService, address).getStatus({}, { deadlineMs: 20_000, backoff: quickRetry }));
    expect(error.code).toBe("UNAVAILABLE");
    expect(error.message).toContain(address);
    expect(await metricValue(telemetry, "mycelium_rpc_client_retries_total")).toBe(0);
  });

  it.each(["UNAVAILABLE", "RESOURCE_EXHAUSTED"] as const)("%s is retried for an idempotent call until it succeeds", async (code) => {
    let invocations = 0;
    harness.handlers.getStatus = async () => {
      invocations++;
      if (invocations < 3) throw new MyceliumError(code, "not now");
      return statusResponse("third time");
    };
    const { address } = await harness.server();
    const { pool, telemetry } = harness.pool();
    await expect(pool.service(unaryService, address).getStatus({}, { idempotent: true, backoff: quickRetry })).resolves.toEqual(
      statusResponse("third time"),
    );
    expect(invocations).toBe(3);
    expect(await metricValue(telemetry, "mycelium_rpc_client_retries_total", { method: "ReplicatorService/GetStatus" })).toBe(2);
  });

  it.each(["UNAVAILABLE", "RESOURCE_EXHAUSTED"] as const)("%s is not retried for a non-idempotent call", async (code) => {
    let invocations = 0;
    harness.handlers.getStatus = async () => {
      invocations++;
      throw new MyceliumError(code, "not now");
    };
    const { address } = await harness.server();
    const { pool } = harness.pool();
    const error = await rejection(pool.service(unaryService, address).getStatus({}, { backoff: quickRetry }));
    expect(error.code).toBe(code);
    expect(invocations).toBe(1);
  });

  it.each(["INVALID_ARGUMENT", "ABORTED", "FAILED_PRECONDITION", "INTERNAL"] as const)(
    "%s is not retried even for an idempotent call",
    async (code) => {
      let invocations = 0;
      harness.handlers.getStatus = async () => {
        invocations++;
        throw new MyceliumError(code, "no");
      };
      const { address } = await harness.server();
      const { pool } = harness.pool();
      const error = await rejection(pool.service(unaryService, address).getStatus({}, { idempotent: true, backoff: quickRetry }));
      expect(error.code).toBe(code);
      expect(invocations).toBe(1);
    },
  );

  it("gives up after maxAttempts attempts in all", async () => {
    let invocations = 0;
    harness.handlers.getStatus = async () => {
      invocations++;
      throw new MyceliumError("UNAVAILABLE", "never");
    };
    const { address } = await harness.server();
    const { pool } = harness.pool();
    const error = await rejection(
      pool.service(unaryService, address).getStatus({}, { idempotent: true, backoff: { ...quickRetry, maxAttempts: 4 } }),
    );
    expect(error.code).toBe("UNAVAILABLE");
    expect(invocations).toBe(4);
  });

  it("an idempotent call refused by the server's CONNECTION_LIMIT is admitted once a slot frees up; a non-idempotent one is not retried", async () => {
    const gate = deferred();
    let invocations = 0;
    harness.handlers.getStatus = async () => {
      invocations++;
      if (invocations === 1) await gate.promise;
      return statusResponse(`call ${invocations}`);
    };
    const { server, address } = await harness.server({ connectionLimit: 1 });
    const { pool, telemetry } = harness.pool();
    const client = pool.service(unaryService, address);
    const holder = client.getStatus({});
    await until(() => server.callsInFlight === 1, "the first call in flight");

    const refused = await rejection(client.getStatus({}, { backoff: quickRetry }));
    expect(refused.code).toBe("RESOURCE_EXHAUSTED");

    const retried = client.getStatus({}, { idempotent: true, deadlineMs: 20_000, backoff: quickRetry });
    await until(async () => (await metricValue(telemetry, "mycelium_rpc_client_retries_total")) >= 1, "a retry");
    gate.resolve();
    await expect(holder).resolves.toEqual(statusResponse("call 1"));
    await expect(retried).resolves.toEqual(statusResponse("call 2"));
    expect(invocations).toBe(2);
  });

  it("does not retry when the next delay would pass the deadline", async () => {
    let invocations = 0;
    harness.handlers.getStatus = async () => {
      invocations++;
      throw new MyceliumError("UNAVAILABLE", "never");
    };
    const { address } = await harness.server();
    const { pool } = harness.pool();
    // Jitter pinned at half: every retry would wait 5 s, beyond the 1 s deadline.
    const random = jest.spyOn(Math, "random").mockReturnValue(0.5);
    try {
      const error = await rejection(
        pool.service(unaryService, address).getStatus({}, {
          idempotent: true,
          deadlineMs: 1000,
          backoff: { initialDelayMs: 10_000, maxDelayMs: 10_000, multiplier: 1, maxAttempts: 10 },
        }),
      );
      expect(error.code).toBe("UNAVAILABLE");
      expect(invocations).toBe(1);
    } finally {
      random.mockRestore();
    }
  });

  it("stops retrying when the caller's signal aborts", async () => {
    let invocations = 0;
    harness.handlers.getStatus = async () => {
      invocations++;
      throw new MyceliumError("UNAVAILABLE", "never");
    };
    const { address } = await harness.server();
    const { pool } = harness.pool();
    const controller = new AbortController();
    const call = pool.service(unaryService, address).getStatus({}, { idempotent: true, signal: controller.signal, backoff: quickRetry });
    await until(() => invocations >= 2, "two attempts");
    controller.abort(new Error("caller gave up"));
    const error = await rejection(call);
    expect(error).toBeInstanceOf(MyceliumError);
    expect(error.code).toBe("CANCELLED");
    const count = invocations;
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(invocations).toBe(count);
  });
});
