import { generateKeyPairSync, randomBytes } from "node:crypto";
import { isIP } from "node:net";
import forge from "node-forge";
import { identityFromCertificate, identityUri, type Role } from "./identity";
import { TlsError } from "./tls-error";

export interface PemPair {
  certPem: string;
  keyPem: string;
}

export const defaultHosts: readonly string[] = Object.freeze(["localhost", "127.0.0.1", "::1"]);

// Issued a little in the past so a peer whose clock is slightly behind still accepts a fresh certificate.
const clockSkewMs = 5 * 60 * 1000;
const dayMs = 24 * 60 * 60 * 1000;

/**
 * A new cluster CA for one network. RSA 2048: node-forge signs only with RSA. The network id is the subject's
 * OU, so certificates cannot be issued by accident for another network from this CA.
 */
export function createCertificateAuthority(options: { networkId: string; validityDays?: number }): PemPair {
  // Validates the network id with the same rules as identities.
  identityUri(options.networkId, "admin", "ca");
  const keys = newKeyPair();
  const certificate = forge.pki.createCertificate();
  certificate.publicKey = keys.publicKey;
  certificate.serialNumber = randomSerial();
  setValidity(certificate, options.validityDays ?? 3650);
  const subject = [
    { name: "organizationName", value: "Mycelium" },
    { shortName: "OU", value: options.networkId },
    { name: "commonName", value: `Mycelium CA (${options.networkId})` },
  ];
  certificate.setSubject(subject);
  certificate.setIssuer(subject);
  certificate.setExtensions([
    { name: "basicConstraints", cA: true, pathLenConstraint: 0, critical: true },
    { name: "keyUsage", keyCertSign: true, cRLSign: true, critical: true },
    { name: "subjectKeyIdentifier" },
  ]);
  certificate.sign(keys.privateKey, forge.md.sha256.create());
  return { certPem: forge.pki.certificateToPem(certificate), keyPem: forge.pki.privateKeyToPem(keys.privateKey) };
}

/** The network a CA made by createCertificateAuthority belongs to. */
export function certificateAuthorityNetworkId(caCertPem: string): string {
  const certificate = parseCertificate(caCertPem, "CA certificate");
  const field = certificate.subject.getField("OU") as { value?: string } | null;
  if (!field?.value) throw new TlsError("INVALID_CERTIFICATE", "the CA certificate names no network (no OU in its subject)");
  return field.value;
}

/**
 * A leaf certificate for one identity, usable as both server and client certificate: its single URI SAN is the
 * identity, its DNS/IP SANs the names clients verify when they check hostnames.
 */
export function issueCertificate(
  ca: PemPair,
  options: { networkId: string; role: Role; name: string; hosts?: string[]; validityDays?: number },
): PemPair {
  const uri = identityUri(options.networkId, options.role, options.name);
  const caCertificate = parseCertificate(ca.certPem, "CA certificate");
  let caKey: forge.pki.rsa.PrivateKey;
  try {
    caKey = forge.pki.privateKeyFromPem(ca.keyPem);
  } catch (error) {
    throw new TlsError("INVALID_CERTIFICATE", `the CA key is not an RSA private key in PEM: ${(error as Error).message}`, { cause: error });
  }
  const caNetworkId = certificateAuthorityNetworkId(ca.certPem);
  if (caNetworkId !== options.networkId) {
    throw new TlsError("INVALID_IDENTITY", `this CA belongs to network "${caNetworkId}", not "${options.networkId}"`);
  }
  const altNames: Array<Record<string, unknown>> = [{ type: 6, value: uri }];
  for (const host of options.hosts ?? defaultHosts) {
    if (isIP(host) !== 0) altNames.push({ type: 7, ip: host });
    else if (/^[A-Za-z0-9*]([A-Za-z0-9-.]*[A-Za-z0-9])?$/.test(host)) altNames.push({ type: 2, value: host });
    else throw new TlsError("INVALID_CERTIFICATE", `"${host}" is neither a DNS name nor an IP address`);
  }
  const keys = newKeyPair();
  const certificate = forge.pki.createCertificate();
  certificate.publicKey = keys.publicKey;
  certificate.serialNumber = randomSerial();
  setValidity(certificate, options.validityDays ?? 365);
  certificate.setSubject([
    { name: "organizationName", value: "Mycelium" },
    { shortName: "OU", value: `${options.networkId}/${options.role}` },
    { name: "commonName", value: options.name },
  ]);
  certificate.setIssuer(caCertificate.subject.attributes);
  certificate.setExtensions([
    { name: "basicConstraints", cA: false, critical: true },
    { name: "keyUsage", digitalSignature: true, keyEncipherment: true, critical: true },
    { name: "extKeyUsage", serverAuth: true, clientAuth: true },
    { name: "subjectAltName", altNames },
    { name: "subjectKeyIdentifier" },
    { name: "authorityKeyIdentifier", keyIdentifier: caCertificate.generateSubjectKeyIdentifier().getBytes() },
  ]);
  certificate.sign(caKey, forge.md.sha256.create());
  const issued = { certPem: forge.pki.certificateToPem(certificate), keyPem: forge.pki.privateKeyToPem(keys.privateKey) };
  // The identity must read back exactly as asked through Node's parser, which is what servers will use.
  if (identityFromCertificate(issued.certPem).uri !== uri) throw new Error(`bug: issued identity does not read back as ${uri}`);
  return issued;
}

function newKeyPair(): { publicKey: forge.pki.rsa.PublicKey; privateKey: forge.pki.rsa.PrivateKey } {
  // node:crypto generates the key (native, fast); forge only needs it to build and sign certificates.
  const { privateKey } = generateKeyPairSync("rsa", { modulusLength: 2048, privateKeyEncoding: { type: "pkcs8", format: "pem" }, publicKeyEncoding: { type: "spki", format: "pem" } });
  const forgeKey = forge.pki.privateKeyFromPem(privateKey) as forge.pki.rsa.PrivateKey;
  return { privateKey: forgeKey, publicKey: forge.pki.setRsaPublicKey(forgeKey.n, forgeKey.e) };
}

/** 128 random bits, positive and minimally encoded in DER (first byte 0x40-0x7f). */
function randomSerial(): string {
  const bytes = randomBytes(16);
  bytes[0] = 0x40 | (bytes[0]! & 0x3f);
  return bytes.toString("hex");
}

function setValidity(certificate: forge.pki.Certificate, validityDays: number): void {
  if (!(validityDays > 0)) throw new TlsError("INVALID_CERTIFICATE", `validityDays must be positive, got ${validityDays}`);
  const now = Date.now();
  certificate.validity.notBefore = new Date(now - clockSkewMs);
  certificate.validity.notAfter = new Date(now + validityDays * dayMs);
}

function parseCertificate(pem: string, what: string): forge.pki.Certificate {
  try {
    return forge.pki.certificateFromPem(pem);
  } catch (error) {
    throw new TlsError("INVALID_CERTIFICATE", `the ${what} is not an RSA certificate in PEM: ${(error as Error).message}`, { cause: error });
  }
}
