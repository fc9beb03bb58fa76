/** Metadata every Mycelium call carries (DESIGN.md §3). */
export const networkIdKey = "x-mycelium-network-id";
export const protocolVersionKey = "x-mycelium-protocol-version";

export interface SemanticVersion {
  major: number;
  minor: number;
  patch: number;
}

export function parseVersion(text: string): SemanticVersion | null {
  const match = /^(\d+)\.(\d+)\.(\d+)$/.exec(text.trim());
  if (!match) return null;
  return { major: Number(match[1]), minor: Number(match[2]), patch: Number(match[3]) };
}

export function compareVersions(a: SemanticVersion, b: SemanticVersion): number {
  return a.major - b.major || a.minor - b.minor || a.patch - b.patch;
}
