import { createHash, createPrivateKey, createPublicKey } from "node:crypto";

// The same derivation as @mycelium/tls nodeIdFromPublicKey, repeated here so that config does not pull in
// node-forge and grpc-js; both packages test it against the same known vector.
export function nodeIdFromPublicKeyHex(publicKeyHex: string): string {
  return "n" + createHash("sha256").update(Buffer.from(publicKeyHex, "hex")).digest("hex").slice(0, 20);
}

const pkcs8Ed25519Prefix = Buffer.from("302e020100300506032b657004220420", "hex");

/** The raw public key (hex) of a raw 32-byte Ed25519 private key (hex). */
export function ed25519PublicKeyHex(privateKeyHex: string): string {
  const privateKey = createPrivateKey({ key: Buffer.concat([pkcs8Ed25519Prefix, Buffer.from(privateKeyHex, "hex")]), format: "der", type: "pkcs8" });
  const spki = createPublicKey(privateKey).export({ format: "der", type: "spki" });
  return spki.subarray(spki.length - 32).toString("hex");
}
