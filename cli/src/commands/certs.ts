import type { Command } from "commander";
import { generateNodeKeyPair, initCertificateDirectory, isRole, issueToDirectory, nodeIdFromPublicKey, roles } from "@mycelium/tls";

export function registerCerts(program: Command): void {
  const certs = program.command("certs").description("the cluster CA and certificates (mutual TLS identities)");
  certs
    .command("init")
    .description("create a cluster CA (ca.crt, ca.key) in a directory")
    .requiredOption("--dir <dir>", "certificate directory")
    .option("--network-id <id>", "network the CA issues for", "testnet")
    .option("--force", "replace an existing CA (every certificate it issued stops being trusted)")
    .action((options: { dir: string; networkId: string; force?: boolean }) => {
      const { caCertPath, caKeyPath } = initCertificateDirectory(options.dir, options.networkId, { force: Boolean(options.force) });
      process.stdout.write(`CA for network ${options.networkId}:\n  ${caCertPath}\n  ${caKeyPath} (keep it secret)\n`);
    });
  certs
    .command("issue")
    .description("issue a certificate with identity spiffe://<network-id>/<role>/<name>")
    .requiredOption("--dir <dir>", "certificate directory holding the CA")
    .requiredOption("--role <role>", `one of ${roles.join(", ")}`)
    .requiredOption("--name <name>", "instance name (a node-agent's name is its node id)")
    .option("--network-id <id>", "network id (must match the CA's)", "testnet")
    .option("--host <host>", "DNS name or IP for the server certificate (repeatable)", (v: string, p: string[]) => [...p, v], [] as string[])
    .option("--days <n>", "validity in days", "365")
    .action((options: { dir: string; role: string; name: string; networkId: string; host: string[]; days: string }) => {
      if (!isRole(options.role)) throw new Error(`--role must be one of ${roles.join(", ")}, not ${options.role}`);
      const paths = issueToDirectory(options.dir, {
        networkId: options.networkId,
        role: options.role,
        name: options.name,
        ...(options.host.length ? { hosts: options.host } : {}),
        validityDays: Number(options.days),
      });
      process.stdout.write(`spiffe://${options.networkId}/${options.role}/${options.name}\n  ${paths.certPath}\n  ${paths.keyPath}\n`);
    });
}

export function registerKeygen(program: Command): void {
  program
    .command("keygen")
    .description("generate a node's Ed25519 key pair (MYCELIUM_PUBLIC_KEY / MYCELIUM_PRIVATE_KEY) and print its node id")
    .option("--env", "print as environment variable assignments")
    .action((options: { env?: boolean }) => {
      const keys = generateNodeKeyPair();
      const nodeId = nodeIdFromPublicKey(keys.publicKeyHex);
      if (options.env) {
        process.stdout.write(`MYCELIUM_PUBLIC_KEY=${keys.publicKeyHex}\nMYCELIUM_PRIVATE_KEY=${keys.privateKeyHex}\n# node id ${nodeId}\n`);
      } else {
        process.stdout.write(JSON.stringify({ nodeId, publicKey: keys.publicKeyHex, privateKey: keys.privateKeyHex }, null, 2) + "\n");
      }
    });
}
