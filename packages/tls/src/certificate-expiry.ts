import type { TlsMaterial } from "./tls-material";

/**
 * Why the certificate in `material` cannot be served at `now`, or null while it can. A process keeps the last
 * material that checked out when renewed files are missing or unusable, so this is how it notices that it has
 * outlived its certificate (readiness fails; peers would refuse every handshake).
 */
export function certificateExpiryProblem(material: TlsMaterial, now: Date = new Date()): string | null {
  const { certificate } = material;
  const from = new Date(certificate.validFrom);
  const to = new Date(certificate.validTo);
  const which = `the serving certificate ${material.identity.uri} (serial ${certificate.serialNumber})`;
  if (now > to) return `${which} expired at ${to.toISOString()} and no renewed certificate has been loaded: renew it (see docs/operations.md, certificates)`;
  if (now < from) return `${which} is not valid before ${from.toISOString()}: check this machine's clock`;
  return null;
}

/** The Unix time in seconds at which the certificate in `material` expires (the expiry gauge's value). */
export function certificateExpirySeconds(material: TlsMaterial): number {
  return new Date(material.certificate.validTo).getTime() / 1000;
}
