/** One sample of the Prometheus text exposition format. */
export interface Sample {
  name: string;
  labels: Readonly<Record<string, string>>;
  value: number;
}

/**
 * Parse the text exposition format (what every service's /metrics serves) into samples. Comments,
 * HELP/TYPE lines and timestamps are dropped; a malformed line is skipped rather than failing the
 * whole scrape, since one odd series must not blank the dashboard.
 */
export function parsePrometheusText(text: string): Sample[] {
  const samples: Sample[] = [];
  for (const rawLine of text.split("\n")) {
    const line = rawLine.trim();
    if (line === "" || line.startsWith("#")) continue;
    const sample = parseLine(line);
    if (sample) samples.push(sample);
  }
  return samples;
}

function parseLine(line: string): Sample | null {
  const nameMatch = /^[a-zA-Z_:][a-zA-Z0-9_:]*/.exec(line);
  if (!nameMatch) return null;
  const name = nameMatch[0];
  let position = name.length;
  const labels: Record<string, string> = {};
  if (line[position] === "{") {
    position++;
    for (;;) {
      while (line[position] === " " || line[position] === ",") position++;
      if (line[position] === "}") {
        position++;
        break;
      }
      const labelMatch = /^([a-zA-Z_][a-zA-Z0-9_]*)\s*=\s*"/.exec(line.slice(position));
      if (!labelMatch) return null;
      position += labelMatch[0].length;
      let value = "";
      for (;;) {
        const char = line[position];
        if (char === undefined) return null;
        position++;
        if (char === '"') break;
        if (char === "\\") {
          const escaped = line[position++];
          value += escaped === "n" ? "\n" : escaped ?? "";
        } else {
          value += char;
        }
      }
      labels[labelMatch[1]!] = value;
    }
  }
  const rest = line.slice(position).trim().split(/\s+/);
  const value = parseValue(rest[0] ?? "");
  if (value === null) return null;
  return { name, labels, value };
}

function parseValue(text: string): number | null {
  if (text === "+Inf") return Infinity;
  if (text === "-Inf") return -Infinity;
  if (text === "NaN") return NaN;
  if (text === "") return null;
  const value = Number(text);
  return Number.isNaN(value) ? null : value;
}
