import type { ConfigGroup } from "./types";
import { configGroupTitles, variableDefinitions, type VariableSpec } from "./variables";

/** Markdown for docs/configuration.md, generated from the same table loadConfig uses so the two never drift. */
export function renderConfigurationReference(): string {
  const lines: string[] = [
    "# Configuration",
    "",
    "<!-- Generated from packages/config (configVariables); do not edit by hand. -->",
    "",
    "Every setting is an environment variable with the `MYCELIUM_` prefix. The whole configuration is checked once at",
    "start; any bad, missing or unknown `MYCELIUM_*` variable stops the process with a message naming the variable and",
    "what it expected. An empty value counts as unset.",
    "",
    "- Durations: a bare number is seconds (`30`); units are accepted: `500ms`, `30s`, `5m`, `1h`, `1.5s`.",
    "- Sizes: a bare number is bytes; units are accepted: `64kB`, `512MiB`, `1GB` (kB/MB/GB/TB are powers of 1000,",
    "  KiB/MiB/GiB/TiB powers of 1024).",
    "- Booleans: `true`/`false`, `1`/`0`, `yes`/`no`, any case.",
    "- Lists: comma-separated; items are trimmed and may not be empty.",
    "",
  ];
  const groups = [...new Set(variableDefinitions.map((definition) => definition.group))] as ConfigGroup[];
  for (const group of groups) {
    lines.push(`## ${configGroupTitles[group]}`, "", "| Variable | Type | Default | Required | Description |", "|---|---|---|---|---|");
    for (const spec of variableDefinitions.filter((definition) => definition.group === group)) {
      lines.push(`| \`${spec.name}\` | ${cell(spec.type)} | ${cell(defaultText(spec))} | ${cell(requiredText(spec))} | ${cell(descriptionText(spec))} |`);
    }
    lines.push("");
  }
  return lines.join("\n");
}

function defaultText(spec: VariableSpec): string {
  if (spec.derivedDefault !== undefined) return spec.derivedDefault;
  if (spec.default === undefined) return "—";
  return spec.default === "" ? "(empty)" : `\`${spec.default}\``;
}

function requiredText(spec: VariableSpec): string {
  const parts: string[] = [];
  if (spec.requiredFor.length > 0) parts.push(spec.requiredFor.join(", "));
  if (spec.requiredWhen) parts.push(`when \`${spec.requiredWhen.variable}=${spec.requiredWhen.equals}\``);
  return parts.length === 0 ? "—" : parts.join("; ");
}

function descriptionText(spec: VariableSpec): string {
  return `${spec.description} Expected: ${spec.expected}.${spec.secret ? " Secret: never printed." : ""}`;
}

function cell(text: string): string {
  return text.replace(/\|/g, "\\|").replace(/\n/g, " ");
}
