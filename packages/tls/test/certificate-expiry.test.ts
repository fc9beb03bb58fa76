import { certificateExpiryProblem, certificateExpirySeconds, createCertificateAuthority, issueCertificate, TlsMaterial } from "@mycelium/tls";

const ca = createCertificateAuthority({ networkId: "testnet" });
const issued = issueCertificate(ca, { networkId: "testnet", role: "coordinator", name: "coordinator", hosts: ["localhost"], validityDays: 1 });
const material = TlsMaterial.fromPem({ certPem: issued.certPem, keyPem: issued.keyPem, caPem: ca.certPem });
const validFrom = new Date(material.certificate.validFrom);
const validTo = new Date(material.certificate.validTo);

describe("certificateExpiryProblem", () => {
  test("is null while the certificate is valid, up to and including its last second", () => {
    expect(certificateExpiryProblem(material, validFrom)).toBeNull();
    expect(certificateExpiryProblem(material, new Date(validFrom.getTime() + 3_600_000))).toBeNull();
    expect(certificateExpiryProblem(material, validTo)).toBeNull();
  });

  test("names the certificate, when it expired and what to do once it has", () => {
    const problem = certificateExpiryProblem(material, new Date(validTo.getTime() + 1000));
    expect(problem).toContain("spiffe://testnet/coordinator/coordinator");
    expect(problem).toContain(material.certificate.serialNumber);
    expect(problem).toContain(`expired at ${validTo.toISOString()}`);
    expect(problem).toMatch(/renew it/);
  });

  test("points at the clock when the certificate is not valid yet", () => {
    expect(certificateExpiryProblem(material, new Date(validFrom.getTime() - 1000))).toMatch(/not valid before .*clock/);
  });
});

describe("certificateExpirySeconds", () => {
  test("is the certificate's notAfter as Unix seconds, a day after issue for a one-day certificate", () => {
    expect(certificateExpirySeconds(material)).toBe(validTo.getTime() / 1000);
    expect(Math.abs(certificateExpirySeconds(material) - (validFrom.getTime() / 1000 + 86_400))).toBeLessThanOrEqual(600);
  });
});
