import { createHash, createPrivateKey, createPublicKey, generateKeyPairSync, sign, verify, type KeyObject } from "node:crypto";
import { TlsError } from "./tls-error";

/**
 * Node identity: an Ed25519 pair as raw 32-byte keys in hex (MYCELIUM_PUBLIC_KEY / MYCELIUM_PRIVATE_KEY). The node
 * id is derived from the public key and the registration is signed, so a node cannot register as another.
 */

// DER prefixes that wrap a raw Ed25519 key into PKCS#8 / SPKI, the forms node:crypto imports.
const pkcs8Prefix = Buffer.from("302e020100300506032b657004220420", "hex");
const spkiPrefix = Buffer.from("302a300506032b6570032100", "hex");
const keyHexPattern = /^[0-9a-fA-F]{64}$/;
const signatureHexPattern = /^[0-9a-fA-F]{128}$/;

export function generateNodeKeyPair(): { publicKeyHex: string; privateKeyHex: string } {
  const { publicKey, privateKey } = generateKeyPairSync("ed25519");
  return { publicKeyHex: rawPublicKey(publicKey).toString("hex"), privateKeyHex: rawPrivateKey(privateKey).toString("hex") };
}

export function publicKeyFromPrivate(privateKeyHex: string): string {
  return rawPublicKey(createPublicKey(privateKeyObject(privateKeyHex))).toString("hex");
}

/** "n" + the first 20 hex characters of sha256(raw public key). */
export function nodeIdFromPublicKey(publicKeyHex: string): string {
  if (!keyHexPattern.test(publicKeyHex)) throw new TlsError("INVALID_IDENTITY", "a node public key is 64 hex characters (raw 32-byte Ed25519)");
  return "n" + createHash("sha256").update(Buffer.from(publicKeyHex, "hex")).digest("hex").slice(0, 20);
}

export interface RegistrationFields {
  nodeId: string;
  nodeType: string;
  address: string;
  publicKey: string;
  validatorWeight: number;
  minerCapacityGb: number;
  networkId: string;
  timestampMs: number;
}

const registrationDomain = "mycelium/node-registration/v1\n";

/**
 * The bytes a registration signs: a domain tag (so the signature means nothing in any other context) and the
 * fields as a JSON array in a fixed order, which JavaScript serialises identically every time.
 */
export function registrationPayload(fields: RegistrationFields): Buffer {
  for (const key of ["nodeId", "nodeType", "address", "publicKey", "networkId"] as const) {
    if (typeof fields[key] !== "string") throw new TypeError(`registration field ${key} must be a string`);
  }
  for (const key of ["validatorWeight", "minerCapacityGb", "timestampMs"] as const) {
    if (!Number.isFinite(fields[key])) throw new TypeError(`registration field ${key} must be a finite number`);
  }
  if (!Number.isSafeInteger(fields.timestampMs)) throw new TypeError("registration field timestampMs must be an integer");
  const ordered = [
    fields.nodeId,
    fields.nodeType,
    fields.address,
    fields.publicKey,
    fields.validatorWeight,
    fields.minerCapacityGb,
    fields.networkId,
    fields.timestampMs,
  ];
  return Buffer.from(registrationDomain + JSON.stringify(ordered), "utf8");
}

/** Hex Ed25519 signature over registrationPayload. Refuses a private key that is not the pair of fields.publicKey. */
export function signRegistration(fields: RegistrationFields, privateKeyHex: string): string {
  const privateKey = privateKeyObject(privateKeyHex);
  if (rawPublicKey(createPublicKey(privateKey)).toString("hex") !== fields.publicKey.toLowerCase()) {
    throw new TlsError("KEY_MISMATCH", "the private key does not belong to the registration's public key");
  }
  return sign(null, registrationPayload(fields), privateKey).toString("hex");
}

/**
 * True only when the signature over the fields verifies with fields.publicKey and fields.nodeId is the id that
 * key derives. Malformed input is simply not valid: this never throws on what a peer sent.
 */
export function verifyRegistration(fields: RegistrationFields, signatureHex: string): boolean {
  try {
    if (!keyHexPattern.test(fields.publicKey) || !signatureHexPattern.test(signatureHex)) return false;
    if (fields.nodeId !== nodeIdFromPublicKey(fields.publicKey)) return false;
    const publicKey = createPublicKey({ key: Buffer.concat([spkiPrefix, Buffer.from(fields.publicKey, "hex")]), format: "der", type: "spki" });
    return verify(null, registrationPayload(fields), publicKey, Buffer.from(signatureHex, "hex"));
  } catch {
    return false;
  }
}

function privateKeyObject(privateKeyHex: string): KeyObject {
  if (!keyHexPattern.test(privateKeyHex)) throw new TlsError("INVALID_IDENTITY", "a node private key is 64 hex characters (raw 32-byte Ed25519 seed)");
  return createPrivateKey({ key: Buffer.concat([pkcs8Prefix, Buffer.from(privateKeyHex, "hex")]), format: "der", type: "pkcs8" });
}

function rawPublicKey(publicKey: KeyObject): Buffer {
  const der = publicKey.export({ format: "der", type: "spki" });
  return der.subarray(der.length - 32);
}

function rawPrivateKey(privateKey: KeyObject): Buffer {
  const der = privateKey.export({ format: "der", type: "pkcs8" });
  return der.subarray(der.length - 32);
}
