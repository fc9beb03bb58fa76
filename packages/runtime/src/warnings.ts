/**
 * grpc-js passes an IP literal as the TLS server name when dialling an address like 127.0.0.1:7400,
 * and Node warns (DEP0123) once per process. The certificate's IP SAN is still verified; the warning
 * says nothing an operator can act on, so this one warning is dropped and every other kept.
 */
export function silenceIpServerNameWarning(): void {
  const original = process.emitWarning.bind(process) as (...args: unknown[]) => void;
  process.emitWarning = ((warning: string | Error, ...rest: unknown[]) => {
    const first = rest[0];
    const code = typeof first === "object" && first !== null ? (first as { code?: string }).code : rest[1];
    if (code === "DEP0123") return;
    original(warning, ...rest);
  }) as typeof process.emitWarning;
}
