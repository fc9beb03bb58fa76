import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { X509Certificate } from "node:crypto";
import {
  certificateAuthorityNetworkId,
  createCertificateAuthority,
  initCertificateDirectory,
  issueCertificate,
  issueToDirectory,
  TlsMaterial,
  type PemPair,
} from "@mycelium/tls";

const dayMs = 86_400_000;
let ca: PemPair;
let leaf: PemPair;

beforeAll(() => {
  ca = createCertificateAuthority({ networkId: "testnet" });
  leaf = issueCertificate(ca, { networkId: "testnet", role: "node-agent", name: "n1", hosts: ["node-1.internal", "10.1.2.3", "::1"] });
});

describe("createCertificateAuthority / issueCertificate", () => {
  it("makes a CA that only the CA is: basicConstraints CA on the CA, not on leaves", () => {
    expect(new X509Certificate(ca.certPem).ca).toBe(true);
    expect(new X509Certificate(leaf.certPem).ca).toBe(false);
    expect(certificateAuthorityNetworkId(ca.certPem)).toBe("testnet");
  });

  it("gives a leaf its identity as the single URI SAN, then its DNS and IP names, for server and client use", () => {
    const certificate = new X509Certificate(leaf.certPem);
    expect(certificate.subjectAltName).toBe("URI:spiffe://testnet/node-agent/n1, DNS:node-1.internal, IP Address:10.1.2.3, IP Address:0:0:0:0:0:0:0:1");
    expect(certificate.keyUsage).toEqual(expect.arrayContaining(["1.3.6.1.5.5.7.3.1", "1.3.6.1.5.5.7.3.2"]));
    expect(certificate.checkIssued(new X509Certificate(ca.certPem))).toBe(true);
    expect(certificate.verify(new X509Certificate(ca.certPem).publicKey)).toBe(true);
    expect(certificate.checkHost("node-1.internal")).toBe("node-1.internal");
    expect(certificate.checkIP("10.1.2.3")).toBe("10.1.2.3");
    expect(certificate.checkHost("localhost")).toBeUndefined();
  });

  it("defaults to localhost names and draws a different random positive serial every time", () => {
    const serials = new Set<string>();
    for (let i = 0; i < 3; i++) {
      const certificate = new X509Certificate(issueCertificate(ca, { networkId: "testnet", role: "client", name: "c" }).certPem);
      expect(certificate.subjectAltName).toBe("URI:spiffe://testnet/client/c, DNS:localhost, IP Address:127.0.0.1, IP Address:0:0:0:0:0:0:0:1");
      expect(certificate.serialNumber).toMatch(/^[4-7][0-9A-F]{31}$/);
      serials.add(certificate.serialNumber);
    }
    expect(serials.size).toBe(3);
  });

  it("honours validityDays", () => {
    const shortLived = new X509Certificate(issueCertificate(ca, { networkId: "testnet", role: "client", name: "c", validityDays: 2 }).certPem);
    const lifetime = Date.parse(shortLived.validTo) - Date.now();
    expect(lifetime).toBeGreaterThan(1 * dayMs);
    expect(lifetime).toBeLessThanOrEqual(2 * dayMs);
  });

  it("refuses another network's identity, bad names and bad hosts", () => {
    expect(() => issueCertificate(ca, { networkId: "mainnet", role: "client", name: "c" })).toThrow(/belongs to network "testnet", not "mainnet"/);
    expect(() => issueCertificate(ca, { networkId: "testnet", role: "client", name: "a b" })).toThrow(expect.objectContaining({ code: "INVALID_IDENTITY" }));
    expect(() => issueCertificate(ca, { networkId: "testnet", role: "client", name: "c", hosts: ["bad host"] })).toThrow(/neither a DNS name nor an IP/);
    expect(() => createCertificateAuthority({ networkId: "Main Net" })).toThrow(expect.objectContaining({ code: "INVALID_IDENTITY" }));
  });
});

describe("TlsMaterial", () => {
  it("accepts a matching, current, CA-issued certificate and exposes its identity", () => {
    const material = TlsMaterial.fromPem({ certPem: leaf.certPem, keyPem: leaf.keyPem, caPem: ca.certPem });
    expect(material.identity.uri).toBe("spiffe://testnet/node-agent/n1");
    expect(material.serialNumber).toBe(new X509Certificate(leaf.certPem).serialNumber);
    expect(material.validTo.getTime()).toBeGreaterThan(Date.now());
  });

  it.each([
    ["a key from another certificate", () => ({ certPem: leaf.certPem, keyPem: issueCertificate(ca, { networkId: "testnet", role: "client", name: "x" }).keyPem, caPem: ca.certPem }), "KEY_MISMATCH"],
    ["a certificate from another CA", () => ({ ...issueCertificate(createCertificateAuthority({ networkId: "testnet" }), { networkId: "testnet", role: "client", name: "x" }), caPem: ca.certPem }), "UNTRUSTED"],
    ["a certificate without an identity (the CA itself)", () => ({ certPem: ca.certPem, keyPem: ca.keyPem, caPem: ca.certPem }), "INVALID_IDENTITY"],
    ["a leaf in place of the CA", () => ({ certPem: leaf.certPem, keyPem: leaf.keyPem, caPem: leaf.certPem }), "INVALID_CERTIFICATE"],
    ["garbage for a certificate", () => ({ certPem: "garbage", keyPem: leaf.keyPem, caPem: ca.certPem }), "INVALID_CERTIFICATE"],
    ["garbage for a key", () => ({ certPem: leaf.certPem, keyPem: "garbage", caPem: ca.certPem }), "INVALID_CERTIFICATE"],
    ["an empty CA file", () => ({ certPem: leaf.certPem, keyPem: leaf.keyPem, caPem: "" }), "INVALID_CERTIFICATE"],
  ] as const)("rejects %s", (_, pems, code) => {
    expect(() => TlsMaterial.fromPem(pems())).toThrow(expect.objectContaining({ code }));
  });

  it("rejects a certificate that is expired or not yet valid", () => {
    const pems = { certPem: leaf.certPem, keyPem: leaf.keyPem, caPem: ca.certPem };
    expect(() => TlsMaterial.fromPem(pems, { now: new Date(Date.now() + 366 * dayMs) })).toThrow(expect.objectContaining({ code: "EXPIRED", message: expect.stringMatching(/expired at/) }));
    expect(() => TlsMaterial.fromPem(pems, { now: new Date(Date.now() - dayMs) })).toThrow(expect.objectContaining({ code: "EXPIRED", message: expect.stringMatching(/not valid before/) }));
  });

  it("trusts any CA in a bundle, so a CA can be rotated", () => {
    const newCa = createCertificateAuthority({ networkId: "testnet" });
    const newLeaf = issueCertificate(newCa, { networkId: "testnet", role: "client", name: "x" });
    const bundle = ca.certPem + newCa.certPem;
    expect(TlsMaterial.fromPem({ ...leaf, caPem: bundle }).identity.name).toBe("n1");
    expect(TlsMaterial.fromPem({ ...newLeaf, caPem: bundle }).identity.name).toBe("x");
  });
});

describe("certificate directories", () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), "mycelium-certs-"));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it("init writes ca.crt and a private ca.key, and refuses to replace them unless forced", () => {
    const target = join(dir, "certs");
    const { caCertPath, caKeyPath } = initCertificateDirectory(target, "testnet");
    expect(caCertPath).toBe(join(target, "ca.crt"));
    expect(statSync(caKeyPath).mode & 0o777).toBe(0o600);
    expect(statSync(target).mode & 0o777).toBe(0o700);
    const original = readFileSync(caCertPath, "utf8");
    expect(() => initCertificateDirectory(target, "testnet")).toThrow(expect.objectContaining({ code: "FILE_ERROR", message: expect.stringMatching(/already holds a CA/) }));
    expect(readFileSync(caCertPath, "utf8")).toBe(original);
    initCertificateDirectory(target, "testnet", { force: true });
    expect(readFileSync(caCertPath, "utf8")).not.toBe(original);
  });

  it("issues <role>-<name>.crt/.key that load as TlsMaterial", () => {
    initCertificateDirectory(dir, "testnet");
    const paths = issueToDirectory(dir, { networkId: "testnet", role: "shard-router", name: "router-0", hosts: ["router.svc"] });
    expect(paths).toEqual({ certPath: join(dir, "shard-router-router-0.crt"), keyPath: join(dir, "shard-router-router-0.key"), caPath: join(dir, "ca.crt") });
    expect(statSync(paths.keyPath).mode & 0o777).toBe(0o600);
    const material = TlsMaterial.load(paths);
    expect(material.identity.uri).toBe("spiffe://testnet/shard-router/router-0");
    expect(material.certificate.checkHost("router.svc")).toBe("router.svc");
  });

  it("says what is missing", () => {
    expect(() => issueToDirectory(dir, { networkId: "testnet", role: "client", name: "c" })).toThrow(/no usable CA .*mycelium certs init/);
    writeFileSync(join(dir, "ca.crt"), "x");
    expect(() => TlsMaterial.load({ certPath: join(dir, "none.crt"), keyPath: join(dir, "none.key"), caPath: join(dir, "ca.crt") })).toThrow(
      expect.objectContaining({ code: "FILE_ERROR", message: expect.stringContaining("none.crt") }),
    );
  });
});
