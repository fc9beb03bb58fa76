/**
 * Durations and sizes as operators write them. Bare numbers keep the seed's units (seconds, bytes) so
 * every value valid for the seed stays valid here.
 */

const durationUnitsMs: Readonly<Record<string, number>> = { ms: 1, s: 1_000, m: 60_000, h: 3_600_000 };
const durationPattern = /^(\d+(?:\.\d+)?|\.\d+)\s*(ms|s|m|h)?$/i;

/** "30" (seconds), "500ms", "30s", "5m", "1h", "1.5s" → milliseconds. Throws on anything else. */
export function parseDurationMs(text: string): number {
  const match = durationPattern.exec(text.trim());
  if (!match) {
    throw new Error(`"${text}" is not a duration: write seconds ("30") or a number with a unit ("500ms", "30s", "5m", "1h")`);
  }
  const unit = (match[2] ?? "s").toLowerCase();
  return wholeNumber(Number(match[1]) * (durationUnitsMs[unit] as number), text, "milliseconds");
}

// Decimal prefixes are powers of 1000 and binary ones powers of 1024 (IEC 80000-13), so "1GB" is 10^9
// bytes and "1GiB" is 2^30; a bare "k"/"m"/"g" follows the decimal meaning.
const sizeUnitsBytes: Readonly<Record<string, number>> = {
  b: 1,
  k: 1e3, kb: 1e3, m: 1e6, mb: 1e6, g: 1e9, gb: 1e9, t: 1e12, tb: 1e12,
  ki: 2 ** 10, kib: 2 ** 10, mi: 2 ** 20, mib: 2 ** 20, gi: 2 ** 30, gib: 2 ** 30, ti: 2 ** 40, tib: 2 ** 40,
};
const sizePattern = /^(\d+(?:\.\d+)?|\.\d+)\s*([a-z]+)?$/i;

/** "1073741824", "1GB", "512MiB", "1kb" → bytes. Throws on anything else. */
export function parseSizeBytes(text: string): number {
  const match = sizePattern.exec(text.trim());
  const factor = match ? sizeUnitsBytes[(match[2] ?? "b").toLowerCase()] : undefined;
  if (!match || factor === undefined) {
    throw new Error(`"${text}" is not a size: write bytes ("1048576") or a number with a unit ("512MiB", "1GB", "64kB")`);
  }
  return wholeNumber(Number(match[1]) * factor, text, "bytes");
}

function wholeNumber(value: number, text: string, unit: string): number {
  // Binary fractions make 1.1 * 1000 = 1100.0000000000002; anything that close is the whole number meant.
  const rounded = Math.round(value);
  if (Math.abs(value - rounded) > Math.max(1e-9, Math.abs(value) * 1e-12)) {
    throw new Error(`"${text}" is not a whole number of ${unit}`);
  }
  if (!Number.isSafeInteger(rounded)) {
    throw new Error(`"${text}" is too large`);
  }
  return rounded;
}

export function formatDurationMs(ms: number): string {
  for (const [unit, factor] of [["h", 3_600_000], ["m", 60_000], ["s", 1_000]] as const) {
    if (ms !== 0 && ms % factor === 0) return `${ms / factor}${unit}`;
  }
  return `${ms}ms`;
}

export function formatSizeBytes(bytes: number): string {
  const units: ReadonlyArray<readonly [string, number]> = [
    ["TiB", 2 ** 40], ["TB", 1e12], ["GiB", 2 ** 30], ["GB", 1e9], ["MiB", 2 ** 20], ["MB", 1e6], ["KiB", 2 ** 10], ["kB", 1e3],
  ];
  for (const [unit, factor] of units) {
    if (bytes !== 0 && bytes % factor === 0) return `${bytes / factor}${unit}`;
  }
  return `${bytes}B`;
}
