import { createPrivateKey, X509Certificate, type KeyObject } from "node:crypto";
import { readFileSync } from "node:fs";
import { identityFromCertificate, type Identity } from "./identity";
import { TlsError } from "./tls-error";

export interface TlsPaths {
  certPath: string;
  keyPath: string;
  caPath: string;
}

export interface TlsPems {
  certPem: string;
  keyPem: string;
  caPem: string;
}

/**
 * A certificate, its key and the cluster CA, checked together: the key matches the certificate, the
 * certificate was issued by (one of) the CA certificate(s), both are within their validity period, and the
 * certificate carries a valid identity. Nothing unchecked ever reaches a TLS context.
 *
 * The CA file may hold several certificates (a bundle), so a CA can be rotated by trusting old and new for a while.
 */
export class TlsMaterial {
  readonly certificate: X509Certificate;
  readonly authorities: readonly X509Certificate[];
  readonly identity: Identity;

  private constructor(
    readonly certPem: string,
    readonly keyPem: string,
    readonly caPem: string,
    now: Date,
  ) {
    this.certificate = parseCertificate(certPem, "certificate");
    this.authorities = splitPem(caPem).map((pem) => parseCertificate(pem, "CA certificate"));
    if (this.authorities.length === 0) throw new TlsError("INVALID_CERTIFICATE", "the CA file holds no PEM certificate");
    for (const authority of this.authorities) {
      if (!authority.ca) throw new TlsError("INVALID_CERTIFICATE", `the CA file holds a certificate that is not a CA (${authority.subject.replace(/\n/g, ", ")})`);
    }
    let key: KeyObject;
    try {
      key = createPrivateKey(keyPem);
    } catch (error) {
      throw new TlsError("INVALID_CERTIFICATE", `the key is not a PEM private key: ${(error as Error).message}`, { cause: error });
    }
    if (!this.certificate.checkPrivateKey(key)) {
      throw new TlsError("KEY_MISMATCH", `the private key does not belong to the certificate (serial ${this.certificate.serialNumber})`);
    }
    const issuer = issuerOf(this.certificate, this.authorities);
    if (!issuer) {
      throw new TlsError("UNTRUSTED", `the certificate (serial ${this.certificate.serialNumber}) was not issued by the CA in the CA file`);
    }
    checkValidity(this.certificate, now, "the certificate");
    checkValidity(issuer, now, "the CA certificate");
    this.identity = identityFromCertificate(this.certificate);
  }

  /** @throws TlsError */
  static fromPem(pems: TlsPems, options: { now?: Date } = {}): TlsMaterial {
    return new TlsMaterial(pems.certPem, pems.keyPem, pems.caPem, options.now ?? new Date());
  }

  /** Reads and checks the three files. @throws TlsError (FILE_ERROR when a file cannot be read) */
  static load(paths: TlsPaths, options: { now?: Date } = {}): TlsMaterial {
    return TlsMaterial.fromPem(readPems(paths), options);
  }

  /** Hex, uppercase, as Node's X509Certificate and PeerCertificate report it. */
  get serialNumber(): string {
    return this.certificate.serialNumber;
  }

  get validTo(): Date {
    return new Date(this.certificate.validTo);
  }

  /** True when the same bytes were loaded: reloading them again would change nothing. */
  sameAs(pems: TlsPems): boolean {
    return pems.certPem === this.certPem && pems.keyPem === this.keyPem && pems.caPem === this.caPem;
  }
}

export function readPems(paths: TlsPaths): TlsPems {
  const read = (path: string, what: string) => {
    try {
      return readFileSync(path, "utf8");
    } catch (error) {
      throw new TlsError("FILE_ERROR", `cannot read the ${what} ${path}: ${(error as Error).message}`, { cause: error });
    }
  };
  return { certPem: read(paths.certPath, "certificate"), keyPem: read(paths.keyPath, "key"), caPem: read(paths.caPath, "CA certificate") };
}

function issuerOf(certificate: X509Certificate, authorities: readonly X509Certificate[]): X509Certificate | undefined {
  return authorities.find((authority) => certificate.checkIssued(authority) && certificate.verify(authority.publicKey));
}

function checkValidity(certificate: X509Certificate, now: Date, what: string): void {
  const from = new Date(certificate.validFrom);
  const to = new Date(certificate.validTo);
  if (now < from) throw new TlsError("EXPIRED", `${what} (serial ${certificate.serialNumber}) is not valid before ${from.toISOString()}`);
  if (now > to) throw new TlsError("EXPIRED", `${what} (serial ${certificate.serialNumber}) expired at ${to.toISOString()}`);
}

function parseCertificate(data: string | Buffer, what: string): X509Certificate {
  try {
    return new X509Certificate(data);
  } catch (error) {
    throw new TlsError("INVALID_CERTIFICATE", `the ${what} is not a certificate: ${(error as Error).message}`, { cause: error });
  }
}

function splitPem(text: string): string[] {
  return text.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? [];
}
