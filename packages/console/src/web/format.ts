/** Display helpers for the pages. */

export function bytes(n: number | null | undefined): string {
  if (n === null || n === undefined || n < 0) return "—";
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let value = n;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return `${value < 10 && unit > 0 ? value.toFixed(1) : Math.round(value)} ${units[unit]}`;
}

export function ms(n: number | null | undefined): string {
  if (n === null || n === undefined) return "—";
  if (n === 0) return "0 ms";
  if (n < 1) return `${n.toFixed(2)} ms`;
  if (n < 100) return `${n.toFixed(1)} ms`;
  if (n < 10_000) return `${Math.round(n)} ms`;
  return `${(n / 1000).toFixed(1)} s`;
}

export function age(n: number): string {
  if (n < 0) return "never";
  if (n < 1000) return `${n} ms`;
  if (n < 120_000) return `${(n / 1000).toFixed(1)} s`;
  if (n < 7_200_000) return `${Math.round(n / 60_000)} min`;
  return `${Math.round(n / 3_600_000)} h`;
}

export function rate(n: number | null | undefined): string {
  if (n === null || n === undefined) return "—";
  return n < 10 ? n.toFixed(1) : String(Math.round(n));
}

export function count(n: number | null | undefined): string {
  return n === null || n === undefined ? "—" : String(n);
}

export function time(atMs: number): string {
  if (!atMs) return "—";
  return new Date(atMs).toISOString().replace("T", " ").replace(/\.\d+Z$/, "Z");
}

export function shortId(id: string): string {
  return id.length > 13 ? `${id.slice(0, 8)}…` : id;
}
