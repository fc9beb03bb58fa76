import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { randomBytes } from "node:crypto";
import { createCertificateAuthority, issueCertificate, type PemPair } from "./certificates";
import type { Role } from "./identity";
import { TlsError } from "./tls-error";
import type { TlsPaths } from "./tls-material";

/**
 * A certificates directory: ca.crt, ca.key, and <role>-<name>.crt / .key per identity. Keys are mode 0600,
 * the directory 0700. Files are replaced by rename, so a process reloading them never reads half a file.
 */
export function certificatePaths(dir: string, role: Role, name: string): TlsPaths {
  return { certPath: join(dir, `${role}-${name}.crt`), keyPath: join(dir, `${role}-${name}.key`), caPath: join(dir, "ca.crt") };
}

export function initCertificateDirectory(dir: string, networkId: string, options: { force?: boolean } = {}): { caCertPath: string; caKeyPath: string } {
  const caCertPath = join(dir, "ca.crt");
  const caKeyPath = join(dir, "ca.key");
  // Replacing a CA silently would orphan every certificate issued from it.
  if (!options.force && (existsSync(caCertPath) || existsSync(caKeyPath))) {
    throw new TlsError("FILE_ERROR", `${dir} already holds a CA (ca.crt / ca.key); pass force to replace it`);
  }
  const ca = createCertificateAuthority({ networkId });
  ensureDirectory(dir);
  writeAtomically(caKeyPath, ca.keyPem, 0o600);
  writeAtomically(caCertPath, ca.certPem, 0o644);
  return { caCertPath, caKeyPath };
}

export function issueToDirectory(dir: string, options: { networkId: string; role: Role; name: string; hosts?: string[]; validityDays?: number }): TlsPaths {
  const ca = readCa(dir);
  const issued = issueCertificate(ca, options);
  const paths = certificatePaths(dir, options.role, options.name);
  // The key first: a reader that sees the new certificate with the old key rejects the pair and retries.
  writeAtomically(paths.keyPath, issued.keyPem, 0o600);
  writeAtomically(paths.certPath, issued.certPem, 0o644);
  return paths;
}

function readCa(dir: string): PemPair {
  try {
    return { certPem: readFileSync(join(dir, "ca.crt"), "utf8"), keyPem: readFileSync(join(dir, "ca.key"), "utf8") };
  } catch (error) {
    throw new TlsError("FILE_ERROR", `no usable CA in ${dir} (run "mycelium certs init" first): ${(error as Error).message}`, { cause: error });
  }
}

function ensureDirectory(dir: string): void {
  try {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
  } catch (error) {
    throw new TlsError("FILE_ERROR", `cannot create ${dir}: ${(error as Error).message}`, { cause: error });
  }
}

function writeAtomically(path: string, contents: string, mode: number): void {
  const temporary = `${path}.${randomBytes(6).toString("hex")}.tmp`;
  try {
    // mode applies at creation, so a key is never readable by others, not even for an instant.
    writeFileSync(temporary, contents, { mode, flag: "wx" });
    renameSync(temporary, path);
  } catch (error) {
    throw new TlsError("FILE_ERROR", `cannot write ${path}: ${(error as Error).message}`, { cause: error });
  }
}
