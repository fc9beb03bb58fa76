import { defaultedVariables } from "./load-config";
import type { MyceliumConfig } from "./types";
import { variableDefinitions, type VariableDefinition } from "./variables";

export interface ConfigEntry {
  variable: string;
  /** As it could be written back into the environment; secrets redacted; "" when unset. */
  value: string;
  /** True when the variable was not set and its default (or derived default) applies. */
  isDefault: boolean;
}

/** The effective configuration, one entry per variable in table order, for `mycelium config` and start-up logs. */
export function describeConfig(config: MyceliumConfig): ConfigEntry[] {
  const defaulted = defaultedVariables.get(config);
  return variableDefinitions.map((definition) => {
    const value = (config[definition.group] as Record<string, unknown>)[definition.field];
    const shown = value === undefined ? "" : show(definition, value);
    // A config that did not come from loadConfig has no record of what was set; compare with the default.
    const isDefault = defaulted ? defaulted.has(definition.name) : equalsStaticDefault(definition, value);
    return { variable: definition.name, value: shown, isDefault };
  });
}

function show(definition: VariableDefinition, value: unknown): string {
  if (definition.secret) return "<redacted>";
  const text = definition.kind.format(value);
  return definition.kind.redact ? definition.kind.redact(text) : text;
}

function equalsStaticDefault(definition: VariableDefinition, value: unknown): boolean {
  if (definition.default === undefined) return value === undefined;
  const parsed = definition.kind.schema.safeParse(definition.default);
  return parsed.success && value !== undefined && definition.kind.format(parsed.data) === definition.kind.format(value);
}
