import { X509Certificate } from "node:crypto";
import forge from "node-forge";
import { createCertificateAuthority, identityFromCertificate, identityUri, issueCertificate, parseIdentityUri, roles, TlsError } from "@mycelium/tls";

describe("identity URIs", () => {
  it.each(roles)("round-trips the %s role", (role) => {
    const uri = identityUri("testnet", role, "instance-1");
    expect(uri).toBe(`spiffe://testnet/${role}/instance-1`);
    expect(parseIdentityUri(uri)).toEqual({ networkId: "testnet", role, name: "instance-1", uri });
  });

  it.each([
    ["https://testnet/client/a", /expected spiffe:\/\/<network-id>\/<role>\/<name>/],
    ["spiffe://testnet/client", /expected spiffe/],
    ["spiffe://testnet/client/a/b", /expected spiffe/],
    ["spiffe://testnet/client/a?x=1", /expected spiffe/],
    ["spiffe://testnet/client/a#frag", /expected spiffe/],
    ["spiffe://TestNet/client/a", /network id "TestNet"/],
    ["spiffe://testnet:443/client/a", /network id "testnet:443"/],
    ["spiffe:///client/a", /network id ""/],
    ["spiffe://testnet/root/a", /role "root" is not one of coordinator, shard-router/],
    ["spiffe://testnet/client/", /name ""/],
    ["spiffe://testnet/client/..", /name ".."/],
    ["spiffe://testnet/client/a%2Fb", /name "a%2Fb"/],
  ])("rejects %s", (uri, message) => {
    let caught: unknown;
    try {
      parseIdentityUri(uri);
    } catch (error) {
      caught = error;
    }
    expect(caught).toBeInstanceOf(TlsError);
    expect((caught as TlsError).code).toBe("INVALID_IDENTITY");
    expect((caught as TlsError).message).toMatch(message);
  });

  it("refuses to build an identity it could not parse back", () => {
    expect(() => identityUri("testnet", "client", "has/slash")).toThrow(expect.objectContaining({ code: "INVALID_IDENTITY" }));
    expect(() => identityUri("testnet", "superuser" as never, "a")).toThrow(expect.objectContaining({ code: "INVALID_IDENTITY" }));
  });
});

describe("identityFromCertificate", () => {
  const ca = createCertificateAuthority({ networkId: "testnet" });
  const leaf = issueCertificate(ca, { networkId: "testnet", role: "replicator", name: "rep-0" });

  it("reads a PEM string, an X509Certificate and a peer certificate alike", () => {
    const x509 = new X509Certificate(leaf.certPem);
    for (const input of [leaf.certPem, x509, { subjectaltname: x509.subjectAltName }]) {
      expect(identityFromCertificate(input)).toEqual({ networkId: "testnet", role: "replicator", name: "rep-0", uri: "spiffe://testnet/replicator/rep-0" });
    }
  });

  it("requires exactly one URI SAN", () => {
    expect(() => identityFromCertificate(ca.certPem)).toThrow(/exactly one URI SAN.*has 0/);
    expect(() => identityFromCertificate({ subjectaltname: "URI:spiffe://testnet/client/a, URI:spiffe://testnet/admin/b" })).toThrow(/has 2/);
    expect(() => identityFromCertificate({})).toThrow(expect.objectContaining({ code: "INVALID_IDENTITY" }));
    expect(() => identityFromCertificate("-----BEGIN CERTIFICATE-----\nnope\n-----END CERTIFICATE-----")).toThrow(expect.objectContaining({ code: "INVALID_CERTIFICATE" }));
  });

  it("cannot be fooled by a SAN value that imitates a second entry", () => {
    // Node quotes such a value; reading it naively would find "URI:spiffe://testnet/admin/root" as an entry.
    const keys = forge.pki.rsa.generateKeyPair(1024);
    const certificate = forge.pki.createCertificate();
    certificate.publicKey = keys.publicKey;
    certificate.serialNumber = "01";
    certificate.validity.notBefore = new Date();
    certificate.validity.notAfter = new Date(Date.now() + 86_400_000);
    certificate.setSubject([{ name: "commonName", value: "x" }]);
    certificate.setIssuer([{ name: "commonName", value: "x" }]);
    certificate.setExtensions([{ name: "subjectAltName", altNames: [{ type: 2, value: "x, URI:spiffe://testnet/admin/root" }, { type: 6, value: "spiffe://testnet/client/guest" }] }]);
    certificate.sign(keys.privateKey, forge.md.sha256.create());
    const pem = forge.pki.certificateToPem(certificate);
    expect(new X509Certificate(pem).subjectAltName).toContain('DNS:"x\\u002c URI:spiffe://testnet/admin/root"');
    expect(identityFromCertificate(pem).uri).toBe("spiffe://testnet/client/guest");
  });
});
