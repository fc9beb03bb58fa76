import { hostAllowed, isLoopbackHost, resolveAccess, sameOrigin } from "@mycelium/console";

const base = { networkId: "testnet", listenerIsLoopback: true, clientCertificates: false, peer: null, tokenSession: false, tokenSignIn: true };

describe("who may do what", () => {
  test.each([
    ["loopback, nothing presented: read-only", base, "viewer", "loopback"],
    ["loopback, signed in with the token: admin", { ...base, tokenSession: true }, "admin", "token"],
    ["exposed, nothing presented: nobody", { ...base, listenerIsLoopback: false }, "none", "none"],
    ["exposed, token session: admin", { ...base, listenerIsLoopback: false, tokenSession: true }, "admin", "token"],
    ["client certificates required, admin identity: admin", { ...base, clientCertificates: true, peer: { networkId: "testnet", role: "admin", name: "ops" } }, "admin", "certificate"],
    ["client certificates required, client identity: read-only", { ...base, clientCertificates: true, peer: { networkId: "testnet", role: "client", name: "app" } }, "viewer", "certificate"],
    ["a service identity may not browse", { ...base, clientCertificates: true, peer: { networkId: "testnet", role: "node-agent", name: "n1" } }, "none", "certificate"],
    ["another network's admin is nobody (and loopback does not rescue it when certificates are required)", { ...base, clientCertificates: true, peer: { networkId: "other", role: "admin", name: "ops" } }, "none", "none"],
    ["a client identity signed in with the token is admin", { ...base, clientCertificates: true, tokenSession: true, peer: { networkId: "testnet", role: "client", name: "app" } }, "admin", "token"],
  ] as const)("%s", (_name, input, role, via) => {
    const session = resolveAccess(input);
    expect([session.role, session.via]).toEqual([role, via]);
  });

  test("loopback names only, on a loopback listener (no DNS rebinding)", () => {
    for (const host of ["127.0.0.1:7480", "localhost:7480", "[::1]:7480", "127.3.2.1", "LOCALHOST:1"]) expect(hostAllowed(host, true)).toBe(true);
    for (const host of ["evil.example:7480", "127.0.0.1.evil.example:7480", "[::2]:1", undefined]) expect(hostAllowed(host, true)).toBe(false);
    expect(hostAllowed("dashboard.example.com", false)).toBe(true);
    expect(isLoopbackHost("0.0.0.0")).toBe(false);
  });

  test("a write must come from the dashboard's own origin", () => {
    expect(sameOrigin("http://127.0.0.1:7480", "127.0.0.1:7480", "http")).toBe(true);
    expect(sameOrigin(undefined, "127.0.0.1:7480", "http")).toBe(true);
    expect(sameOrigin("http://evil.example", "127.0.0.1:7480", "http")).toBe(false);
    expect(sameOrigin("http://127.0.0.1:7480", "127.0.0.1:7480", "https")).toBe(false);
    expect(sameOrigin("null", "127.0.0.1:7480", "http")).toBe(false);
  });
});
