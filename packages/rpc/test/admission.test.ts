/**
 * MyceliumServer and ClientPool over real grpc-js and real mutual TLS on 127.0.0.1: how errors cross the
 * wire, and the admission checks every call passes (identity, network id, protocol version, role, limit).
 */
import { MyceliumError, authorize, type AuthorizationTable } from "@mycelium/rpc";
import {
  Certificates,
  Harness,
  deferred,
  defaultTable,
  metricValue,
  networkId,
  rejection,
  silentTelemetry,
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

describe("errors", () => {
  it("a MyceliumError thrown by a handler arrives with the same code, message, reason and details", async () => {
    harness.handlers.getStatus = async () => {
      throw new MyceliumError("NOT_FOUND", "no shard s-7 here", { reason: "SHARD_MISSING", details: { shardId: "s-7", epoch: "3" } });
    };
    const { address } = await harness.server();
    const { pool } = harness.pool();
    const error = await rejection(pool.service(unaryService, address).getStatus({}));
    expect(error).toBeInstanceOf(MyceliumError);
    expect(error.code).toBe("NOT_FOUND");
    expect(error.message).toBe("no shard s-7 here");
    expect(error.reason).toBe("SHARD_MISSING");
    expect(error.details).toEqual({ shardId: "s-7", epoch: "3" });
  });

  it.each(["INVALID_ARGUMENT", "FAILED_PRECONDITION", "ABORTED", "ALREADY_EXISTS", "UNIMPLEMENTED"] as const)(
    "keeps the code %s across the wire",
    async (code) => {
      harness.handlers.getStatus = async () => {
        throw new MyceliumError(code, `failed with ${code}`);
      };
      const { address } = await harness.server();
      const { pool } = harness.pool();
      const error = await rejection(pool.service(unaryService, address).getStatus({}));
      expect(error.code).toBe(code);
      expect(error.reason).toBeUndefined();
      expect(error.details).toEqual({});
    },
  );

  it("a plain Error arrives as INTERNAL with a reference found in the server log, and none of its text", async () => {
    const logLines: string[] = [];
    harness.handlers.getStatus = async () => {
      throw new Error("password=hunter2 in /etc/secret.conf");
    };
    const { address } = await harness.server({ telemetry: silentTelemetry("server", undefined, logLines) });
    const { pool } = harness.pool();
    const error = await rejection(pool.service(unaryService, address).getStatus({}));
    expect(error.code).toBe("INTERNAL");
    expect(error.message).not.toMatch(/hunter2|secret\.conf|password/);
    expect(error.reason).toBeUndefined();
    expect(error.details).toEqual({});
    const reference = /reference ([a-z0-9]+)/.exec(error.message)?.[1];
    expect(reference).toBeDefined();
    const logged = logLines.map((line) => JSON.parse(line)).find((entry) => entry.reference === reference);
    expect(logged).toBeDefined();
    expect(JSON.stringify(logged.err)).toContain("password=hunter2");
    expect(logged.method).toBe("ReplicatorService/GetStatus");
  });
});

describe("authorization", () => {
  it("lets a role in the table call the method", async () => {
    const { address } = await harness.server();
    const { pool } = harness.pool({ role: "client" });
    await expect(pool.service(unaryService, address).getStatus({})).resolves.toEqual(
      statusResponse(`spiffe://${networkId}/client/caller-client`),
    );
  });

  it("refuses a role the table does not list for the method, before the handler runs", async () => {
    let calls = 0;
    harness.handlers.subscribe = async function* () {
      calls++;
    };
    const { address } = await harness.server();
    const { pool } = harness.pool({ role: "client" });
    const error = await rejection((async () => {
      for await (const _ of pool.service(streamService, address).subscribe({ txId: "" })) void _;
    })());
    expect(error.code).toBe("PERMISSION_DENIED");
    expect(error.reason).toBe("ROLE");
    expect(error.message).toContain('client "caller-client" may not call TransactionService/Subscribe');
    expect(calls).toBe(0);
  });

  it("denies a method missing from the table to everyone (deny by default)", async () => {
    let calls = 0;
    harness.handlers.getStatus = async () => {
      calls++;
      return statusResponse("x");
    };
    // Only Subscribe is in the table; GetStatus is served but nobody was granted it.
    const table: AuthorizationTable = authorize(streamService, { subscribe: ["coordinator", "admin", "client"] });
    const { address, telemetry } = await harness.server({ authorization: table });
    for (const role of ["coordinator", "admin", "client"] as const) {
      const { pool } = harness.pool({ role });
      const error = await rejection(pool.service(unaryService, address).getStatus({}));
      expect(error.code).toBe("PERMISSION_DENIED");
      expect(error.reason).toBe("ROLE");
    }
    expect(calls).toBe(0);
    expect(await metricValue(telemetry, "mycelium_rpc_server_denied_total", { reason: "role" })).toBe(3);
  });

  it("refuses a certificate issued for another network even when the metadata matches", async () => {
    // The server and the caller both claim network "net-z"; the caller's certificate says net-a.
    const { address } = await harness.server({ networkId: "net-z" });
    const { pool } = harness.pool({ networkId: "net-z" });
    const error = await rejection(pool.service(unaryService, address).getStatus({}));
    expect(error.code).toBe("PERMISSION_DENIED");
    expect(error.message).toContain('"net-a"');
    expect(error.message).toContain('"net-z"');
  });
});

describe("network id and protocol version", () => {
  it("refuses a caller on another network with FAILED_PRECONDITION naming both networks", async () => {
    const { address } = await harness.server();
    const { pool } = harness.pool({ networkId: "net-b" });
    const error = await rejection(pool.service(unaryService, address).getStatus({}));
    expect(error.code).toBe("FAILED_PRECONDITION");
    expect(error.reason).toBe("WRONG_NETWORK");
    expect(error.message).toContain('"net-b"');
    expect(error.message).toContain(`"${networkId}"`);
    expect(error.details).toEqual({ expected: networkId, received: "net-b" });
  });

  it("refuses a protocol version below the minimum, naming both versions", async () => {
    const { address } = await harness.server({ minProtocolVersion: "1.2.0" });
    const { pool } = harness.pool({ protocolVersion: "1.1.9" });
    const error = await rejection(pool.service(unaryService, address).getStatus({}));
    expect(error.code).toBe("FAILED_PRECONDITION");
    expect(error.reason).toBe("PROTOCOL_VERSION");
    expect(error.message).toContain("1.1.9");
    expect(error.message).toContain("1.2.0");
    expect(error.details).toEqual({ minimum: "1.2.0", received: "1.1.9" });
  });

  it.each(["1.2", "v1.2.0", "1.2.0-beta", ""])("refuses a malformed protocol version %j", async (version) => {
    const { address } = await harness.server({ minProtocolVersion: "1.2.0" });
    const { pool } = harness.pool({ protocolVersion: version });
    const error = await rejection(pool.service(unaryService, address).getStatus({}));
    expect(error.code).toBe("FAILED_PRECONDITION");
    expect(error.reason).toBe("PROTOCOL_VERSION");
  });

  it.each(["1.2.0", "1.2.1", "1.10.0", "2.0.0"])("accepts version %s against a minimum of 1.2.0 (numeric order)", async (version) => {
    const { address } = await harness.server({ minProtocolVersion: "1.2.0" });
    const { pool } = harness.pool({ protocolVersion: version });
    await expect(pool.service(unaryService, address).getStatus({})).resolves.toBeDefined();
  });

  it("will not start with a minimum version that is not x.y.z", async () => {
    await expect(harness.server({ minProtocolVersion: "1.2" })).rejects.toThrow(/1\.2 is not x\.y\.z/);
  });
});

describe("CONNECTION_LIMIT", () => {
  it("refuses calls beyond connectionLimit in flight with RESOURCE_EXHAUSTED, and admits again once they finish", async () => {
    const gate = deferred();
    let entered = 0;
    harness.handlers.getStatus = async () => {
      entered++;
      await gate.promise;
      return statusResponse("done");
    };
    const { server, address, telemetry } = await harness.server({ connectionLimit: 2 });
    const { pool } = harness.pool();
    const client = pool.service(unaryService, address);
    const held = [client.getStatus({}), client.getStatus({})];
    await until(() => server.callsInFlight === 2, "two calls in flight");

    const error = await rejection(client.getStatus({}));
    expect(error.code).toBe("RESOURCE_EXHAUSTED");
    expect(error.reason).toBe("CONNECTION_LIMIT");
    expect(entered).toBe(2);
    expect(await metricValue(telemetry, "mycelium_rpc_server_denied_total", { reason: "limit" })).toBe(1);

    gate.resolve();
    await expect(Promise.all(held)).resolves.toHaveLength(2);
    expect(server.callsInFlight).toBe(0);
    await expect(client.getStatus({})).resolves.toEqual(statusResponse("done"));
  });
});

describe("authorize()", () => {
  it("keys the table by full method path", () => {
    const table = authorize(unaryService, { getStatus: ["admin"] });
    expect(table).toEqual({ "/mycelium.replicator.v1.ReplicatorService/GetStatus": ["admin"] });
    expect(defaultTable()["/mycelium.coordinator.v1.TransactionService/Subscribe"]).toEqual(["coordinator"]);
  });

  it("throws on a method name that is not in the service", () => {
    expect(() => authorize(unaryService, { getStatus: ["admin"], getStatsu: ["admin"] } as never)).toThrow(
      "authorization rule for unknown method getStatsu",
    );
  });
});
