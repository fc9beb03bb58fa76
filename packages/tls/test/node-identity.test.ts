import {
  generateNodeKeyPair,
  nodeIdFromPublicKey,
  publicKeyFromPrivate,
  registrationPayload,
  signRegistration,
  verifyRegistration,
  type RegistrationFields,
} from "@mycelium/tls";

// RFC 8032, test 1.
const vectorPrivate = "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60";
const vectorPublic = "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a";

function registration(publicKey: string): RegistrationFields {
  return {
    nodeId: nodeIdFromPublicKey(publicKey),
    nodeType: "validator",
    address: "127.0.0.1:7100",
    publicKey,
    validatorWeight: 1,
    minerCapacityGb: 0,
    networkId: "testnet",
    timestampMs: 1_700_000_000_000,
  };
}

describe("Ed25519 node keys", () => {
  it("derive the RFC 8032 public key and a stable node id", () => {
    expect(publicKeyFromPrivate(vectorPrivate)).toBe(vectorPublic);
    // The same vector is asserted in @mycelium/config (the default MYCELIUM_NAME of a node-agent).
    expect(nodeIdFromPublicKey(vectorPublic)).toBe("n21fe31dfa154a261626b");
    expect(nodeIdFromPublicKey(vectorPublic.toUpperCase())).toBe("n21fe31dfa154a261626b");
  });

  it("generates raw 32-byte pairs", () => {
    const pair = generateNodeKeyPair();
    expect(pair.publicKeyHex).toMatch(/^[0-9a-f]{64}$/);
    expect(pair.privateKeyHex).toMatch(/^[0-9a-f]{64}$/);
    expect(publicKeyFromPrivate(pair.privateKeyHex)).toBe(pair.publicKeyHex);
    expect(generateNodeKeyPair().privateKeyHex).not.toBe(pair.privateKeyHex);
  });

  it("reject malformed keys", () => {
    expect(() => publicKeyFromPrivate("abcd")).toThrow(expect.objectContaining({ code: "INVALID_IDENTITY" }));
    expect(() => nodeIdFromPublicKey("xyz")).toThrow(expect.objectContaining({ code: "INVALID_IDENTITY" }));
  });
});

describe("signed registration", () => {
  const pair = generateNodeKeyPair();
  const fields = registration(pair.publicKeyHex);
  const signature = signRegistration(fields, pair.privateKeyHex);

  it("verifies what was signed", () => {
    expect(signature).toMatch(/^[0-9a-f]{128}$/);
    expect(verifyRegistration(fields, signature)).toBe(true);
  });

  it("has one canonical payload, whatever order the fields were written in", () => {
    const reordered = Object.fromEntries(Object.entries(fields).reverse()) as unknown as RegistrationFields;
    expect(registrationPayload(reordered).equals(registrationPayload(fields))).toBe(true);
    expect(registrationPayload(fields).toString("utf8")).toBe(
      `mycelium/node-registration/v1\n["${fields.nodeId}","validator","127.0.0.1:7100","${pair.publicKeyHex}",1,0,"testnet",1700000000000]`,
    );
  });

  it.each([
    ["nodeType", "miner"],
    ["address", "127.0.0.1:7101"],
    ["validatorWeight", 2],
    ["minerCapacityGb", 100],
    ["networkId", "mainnet"],
    ["timestampMs", 1_700_000_000_001],
  ] as const)("rejects a registration whose %s was changed", (field, value) => {
    expect(verifyRegistration({ ...fields, [field]: value }, signature)).toBe(false);
  });

  it("rejects a tampered signature", () => {
    const flipped = (signature[0] === "0" ? "1" : "0") + signature.slice(1);
    expect(verifyRegistration(fields, flipped)).toBe(false);
    expect(verifyRegistration(fields, "zz")).toBe(false);
  });

  it("rejects a node id that its public key does not derive, even when correctly signed", () => {
    const impersonation = { ...fields, nodeId: nodeIdFromPublicKey(vectorPublic) };
    expect(verifyRegistration(impersonation, signRegistration(impersonation, pair.privateKeyHex))).toBe(false);
  });

  it("rejects another node's key claiming this registration", () => {
    const other = generateNodeKeyPair();
    const stolen = { ...fields, publicKey: other.publicKeyHex, nodeId: nodeIdFromPublicKey(other.publicKeyHex) };
    expect(verifyRegistration(stolen, signature)).toBe(false);
    expect(() => signRegistration(fields, other.privateKeyHex)).toThrow(expect.objectContaining({ code: "KEY_MISMATCH" }));
  });

  it("refuses to build a payload from malformed fields", () => {
    expect(() => registrationPayload({ ...fields, timestampMs: 1.5 })).toThrow(TypeError);
    expect(() => registrationPayload({ ...fields, validatorWeight: Number.NaN })).toThrow(TypeError);
    expect(verifyRegistration({ ...fields, publicKey: "nothex" }, signature)).toBe(false);
  });
});
