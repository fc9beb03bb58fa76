export { TlsError, type TlsErrorCode } from "./tls-error";
export { roles, isRole, identityUri, parseIdentityUri, identityFromCertificate, type Role, type Identity } from "./identity";
export { createCertificateAuthority, issueCertificate, certificateAuthorityNetworkId, defaultHosts, type PemPair } from "./certificates";
export { initCertificateDirectory, issueToDirectory, certificatePaths } from "./certificate-directory";
export { TlsMaterial, type TlsPaths, type TlsPems } from "./tls-material";
export { certificateExpiryProblem, certificateExpirySeconds } from "./certificate-expiry";
export { ReloadingCertificateProvider, defaultRefreshIntervalMs, type ReloadOptions } from "./reloading-certificate-provider";
export {
  serverCredentials,
  channelCredentials,
  type ReloadingCredentials,
  type ServerCredentialsOptions,
  type ChannelCredentialsOptions,
} from "./credentials";
export {
  generateNodeKeyPair,
  publicKeyFromPrivate,
  nodeIdFromPublicKey,
  registrationPayload,
  signRegistration,
  verifyRegistration,
  type RegistrationFields,
} from "./node-identity";
