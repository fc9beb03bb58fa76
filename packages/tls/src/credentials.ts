import * as grpc from "@grpc/grpc-js";
import { ReloadingCertificateProvider, type ReloadOptions } from "./reloading-certificate-provider";
import type { TlsMaterial, TlsPaths } from "./tls-material";

export interface ReloadingCredentials<C> {
  credentials: C;
  /** The material in use now (identity, serial, expiry). */
  readonly material: TlsMaterial;
  /** Reads the files now instead of waiting for the next refresh; true when new material was installed. */
  reload(): Promise<boolean>;
  /** Stops watching the files. */
  close(): void;
}

export interface ServerCredentialsOptions extends ReloadOptions {
  /** Refuse handshakes without a client certificate issued by the cluster CA. */
  requireClientCertificate: boolean;
}

/**
 * Server credentials from the cluster's files: our CA only (never the public roots), client certificates
 * required when asked, and reloaded from disk — new handshakes use new files, open connections keep theirs
 * until they are recycled (grpc.max_connection_age_ms).
 *
 * Handlers read the caller's identity with identityFromCertificate(call.getAuthContext().sslPeerCertificate).
 * grpc-js puts a peer certificate there only when the handshake verified it against our CA, so with
 * requireClientCertificate false a client without a valid certificate simply has none (it is never a forgery).
 *
 * @throws TlsError when the files are unusable at start.
 */
export function serverCredentials(paths: TlsPaths, options: ServerCredentialsOptions): ReloadingCredentials<grpc.ServerCredentials> {
  const provider = new ReloadingCertificateProvider(paths, options);
  // grpc-js names the first parameter caCertificateProvider but passes it on as the identity provider; one
  // provider serves both roles, which makes the order irrelevant. A non-null CA provider makes the server
  // request client certificates; requireClientCertificate makes it reject handshakes without a valid one.
  const credentials = grpc.experimental.createCertificateProviderServerCredentials(provider, provider, options.requireClientCertificate);
  return {
    credentials,
    get material() {
      return provider.current;
    },
    reload: () => provider.reload(),
    close: () => provider.close(),
  };
}

export interface ChannelCredentialsOptions extends ReloadOptions {
  /**
   * Check that the server certificate names the host dialled (DNS/IP SAN). The chain to the cluster CA is
   * checked either way.
   */
  verifyHostname: boolean;
}

/** Channel credentials from the cluster's files: our CA only, our client certificate, reloaded from disk. */
export function channelCredentials(paths: TlsPaths, options: ChannelCredentialsOptions): ReloadingCredentials<grpc.ChannelCredentials> {
  const provider = new ReloadingCertificateProvider(paths, options);
  const credentials = grpc.experimental.createCertificateProviderChannelCredentials(provider, provider, {
    rejectUnauthorized: true,
    ...(options.verifyHostname ? {} : { checkServerIdentity: skipHostnameCheck }),
  });
  return {
    credentials,
    get material() {
      return provider.current;
    },
    reload: () => provider.reload(),
    close: () => provider.close(),
  };
}

// Node consults checkServerIdentity for the name only; the chain is still verified (rejectUnauthorized).
function skipHostnameCheck(): undefined {
  return undefined;
}
