import { readFile } from "node:fs/promises";
import * as grpc from "@grpc/grpc-js";
import { TlsError } from "./tls-error";
import { TlsMaterial, type TlsPaths, type TlsPems } from "./tls-material";

type CaListener = grpc.experimental.CaCertificateUpdateListener;
type IdentityListener = grpc.experimental.IdentityCertificateUpdateListener;

export interface ReloadOptions {
  /** How often the files are read again. @default 5000 */
  refreshIntervalMs?: number;
  /** Called after new material was checked and handed to grpc-js. */
  onReload?: (material: TlsMaterial) => void;
  /** Called once per distinct unusable content on disk; the previous material stays in use. */
  onReloadError?: (error: TlsError) => void;
}

export const defaultRefreshIntervalMs = 5_000;

/**
 * grpc-js's CertificateProvider over our three files, used instead of grpc-js's FileWatcherCertificateProvider
 * because that one passes whatever bytes it reads straight to TLS: a half-written or mismatched file would take
 * the server's credentials down (it reports a failed read as "no certificate"). Here every new set of files is
 * checked as a whole by TlsMaterial first, and anything unusable keeps the previous material.
 */
export class ReloadingCertificateProvider implements grpc.experimental.CertificateProvider {
  private material: TlsMaterial;
  private readonly caListeners = new Set<CaListener>();
  private readonly identityListeners = new Set<IdentityListener>();
  private readonly timer: NodeJS.Timeout | undefined;
  private inFlight: Promise<boolean> | undefined;
  private lastRejection: string | undefined;
  private closed = false;

  /** Loads the files now, so a bad configuration fails at start. @throws TlsError */
  constructor(
    private readonly paths: TlsPaths,
    private readonly options: ReloadOptions = {},
  ) {
    const interval = options.refreshIntervalMs ?? defaultRefreshIntervalMs;
    if (!(interval > 0)) throw new RangeError(`refreshIntervalMs must be positive, got ${interval}`);
    this.material = TlsMaterial.load(paths);
    this.timer = setInterval(() => void this.reload(), interval);
    // Reloading is a background duty; it must not keep a process alive that has nothing else to do.
    this.timer.unref();
  }

  /** The material currently handed to grpc-js. */
  get current(): TlsMaterial {
    return this.material;
  }

  /**
   * Reads the files now. Resolves true when new material was installed, false when nothing changed or the new
   * files were unusable (then onReloadError was told). Never rejects.
   */
  reload(): Promise<boolean> {
    if (this.closed) return Promise.resolve(false);
    this.inFlight ??= this.readAndInstall().finally(() => {
      this.inFlight = undefined;
    });
    return this.inFlight;
  }

  /** Stops reloading. grpc-js keeps the last material it was given. */
  close(): void {
    this.closed = true;
    if (this.timer) clearInterval(this.timer);
  }

  addCaCertificateListener(listener: CaListener): void {
    this.caListeners.add(listener);
    // Asynchronously, as grpc-js expects: its server credentials register their own watcher only after this
    // returns, and would miss an update delivered synchronously.
    process.nextTick(() => {
      if (this.caListeners.has(listener)) listener(this.caUpdate());
    });
  }

  removeCaCertificateListener(listener: CaListener): void {
    this.caListeners.delete(listener);
  }

  addIdentityCertificateListener(listener: IdentityListener): void {
    this.identityListeners.add(listener);
    process.nextTick(() => {
      if (this.identityListeners.has(listener)) listener(this.identityUpdate());
    });
  }

  removeIdentityCertificateListener(listener: IdentityListener): void {
    this.identityListeners.delete(listener);
  }

  private caUpdate(): grpc.experimental.CaCertificateUpdate {
    return { caCertificate: Buffer.from(this.material.caPem) };
  }

  private identityUpdate(): grpc.experimental.IdentityCertificateUpdate {
    return { certificate: Buffer.from(this.material.certPem), privateKey: Buffer.from(this.material.keyPem) };
  }

  private async readAndInstall(): Promise<boolean> {
    let pems: TlsPems;
    try {
      pems = await readPemsAsync(this.paths);
    } catch (error) {
      this.reject(`read:${(error as Error).message}`, error as TlsError);
      return false;
    }
    if (this.closed) return false;
    if (this.material.sameAs(pems)) {
      this.lastRejection = undefined;
      return false;
    }
    let next: TlsMaterial;
    try {
      next = TlsMaterial.fromPem(pems);
    } catch (error) {
      if (!(error instanceof TlsError)) throw error;
      this.reject(`${pems.certPem}\0${pems.keyPem}\0${pems.caPem}`, error);
      return false;
    }
    this.material = next;
    this.lastRejection = undefined;
    // Both updates land in the same tick, so no handshake sees the new CA with the old certificate or the reverse.
    const identity = this.identityUpdate();
    const ca = this.caUpdate();
    for (const listener of this.identityListeners) listener(identity);
    for (const listener of this.caListeners) listener(ca);
    this.options.onReload?.(next);
    return true;
  }

  private reject(key: string, error: TlsError): void {
    // A bad file stays bad until someone fixes it: tell once, not every refresh interval.
    if (key === this.lastRejection) return;
    this.lastRejection = key;
    this.options.onReloadError?.(error);
  }
}

async function readPemsAsync(paths: TlsPaths): Promise<TlsPems> {
  const read = async (path: string, what: string) => {
    try {
      return await readFile(path, "utf8");
    } catch (error) {
      throw new TlsError("FILE_ERROR", `cannot read the ${what} ${path}: ${(error as Error).message}`, { cause: error });
    }
  };
  const [certPem, keyPem, caPem] = await Promise.all([read(paths.certPath, "certificate"), read(paths.keyPath, "key"), read(paths.caPath, "CA certificate")]);
  return { certPem, keyPem, caPem };
}
