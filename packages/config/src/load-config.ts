import { accessSync, constants, statSync } from "node:fs";
import { dirname, resolve } from "node:path";
import { ConfigError, type ConfigIssue } from "./config-error";
import { didYouMean } from "./did-you-mean";
import { crossFieldRules } from "./rules";
import { serviceNames, type MyceliumConfig, type ServiceName } from "./types";
import { variableDefinitions, type VariableDefinition } from "./variables";

const prefix = "MYCELIUM_";
const knownNames = variableDefinitions.map((definition) => definition.name);
const knownNameSet = new Set(knownNames);

/** Variables a loaded config took from its defaults; describeConfig reports them as such. */
export const defaultedVariables = new WeakMap<MyceliumConfig, ReadonlySet<string>>();

/**
 * Parses and validates every MYCELIUM_* variable for one service, all at once. The only reader of the
 * environment in Mycelium: callers pass `process.env` here and hand the result down.
 *
 * An empty (or blank) value counts as unset, because templating tools (Helm, compose files) render an
 * absent setting as an empty string.
 *
 * @throws ConfigError listing every problem.
 */
export function loadConfig(env: Record<string, string | undefined>, options: { service: ServiceName }): MyceliumConfig {
  const { service } = options;
  if (!serviceNames.includes(service)) {
    throw new TypeError(`loadConfig: unknown service "${String(service)}", expected one of ${serviceNames.join(", ")}`);
  }
  const issues: ConfigIssue[] = [];
  const given = new Map<string, string>();
  const values = new Map<string, unknown>();
  const failed = new Set<string>();
  const report = (issue: ConfigIssue) => {
    issues.push(issue);
    failed.add(issue.variable);
  };

  for (const definition of variableDefinitions) {
    const text = env[definition.name]?.trim();
    if (text !== undefined && text !== "") {
      given.set(definition.name, text);
      const result = definition.kind.schema.safeParse(text);
      if (result.success) values.set(definition.name, result.data);
      else report({ variable: definition.name, expected: definition.expected, received: shownText(definition, text), reason: "invalid" });
    } else if (definition.default !== undefined) {
      const result = definition.kind.schema.safeParse(definition.default);
      if (!result.success) throw new Error(`bug: the default of ${definition.name} ("${definition.default}") does not parse`);
      values.set(definition.name, result.data);
    }
  }

  for (const definition of variableDefinitions) {
    if (given.has(definition.name)) continue;
    const because = requiredBecause(definition, service, values);
    if (because !== undefined) report({ variable: definition.name, expected: `${definition.expected} (${because})`, reason: "missing" });
  }

  const config = assemble(values);
  const defaulted = new Set(variableDefinitions.filter((definition) => !given.has(definition.name)).map((definition) => definition.name));
  // Derivations read other values, which are only trustworthy once nothing has been reported.
  for (const definition of issues.length === 0 ? variableDefinitions : []) {
    if (definition.derive && !given.has(definition.name)) {
      const value = definition.derive(config, service);
      if (value !== undefined) setField(config, definition, value);
    }
  }

  for (const definition of variableDefinitions) {
    const path = values.get(definition.name);
    if (definition.kind.type === "file" && typeof path === "string" && !failed.has(definition.name)) {
      const problem = fileProblem(path);
      if (problem !== undefined) report({ variable: definition.name, expected: definition.expected, received: path, detail: problem, reason: "invalid" });
    }
    // A path the process will create (a database, a directory, a trace file) must be creatable there.
    if (definition.kind.type === "path" && typeof path === "string" && given.has(definition.name) && !failed.has(definition.name)) {
      const problem = locationProblem(path, definition.name === "MYCELIUM_DATA_DIR");
      if (problem !== undefined) report({ variable: definition.name, expected: definition.expected, received: path, detail: problem, reason: "invalid" });
    }
  }

  const shown = (name: string): string | undefined => {
    const definition = variableDefinitions.find((candidate) => candidate.name === name);
    const text = given.get(name);
    if (definition === undefined) return undefined;
    if (text !== undefined) return shownText(definition, text);
    return definition.default === undefined ? undefined : `${definition.default} (default)`;
  };
  for (const rule of crossFieldRules) {
    if (rule.variables.some((name) => failed.has(name))) continue;
    const issue = rule.check(config, { service, shown });
    if (issue) report(issue);
  }

  for (const name of Object.keys(env).sort()) {
    if (!name.startsWith(prefix) || knownNameSet.has(name)) continue;
    const suggestion = didYouMean(name, knownNames);
    report({
      variable: name,
      expected: suggestion ? `a known MYCELIUM_* variable; did you mean ${suggestion}?` : "a known MYCELIUM_* variable (see docs/configuration.md)",
      reason: "unknown",
    });
  }

  if (issues.length > 0) {
    const order = (variable: string) => {
      const index = knownNames.indexOf(variable);
      return index === -1 ? knownNames.length : index;
    };
    throw new ConfigError([...issues].sort((a, b) => order(a.variable) - order(b.variable)));
  }
  const frozen = deepFreeze(config);
  defaultedVariables.set(frozen, defaulted);
  return frozen;
}

function requiredBecause(definition: VariableDefinition, service: ServiceName, values: ReadonlyMap<string, unknown>): string | undefined {
  if (definition.requiredFor.includes(service)) return `required for ${service}`;
  const when = definition.requiredWhen;
  if (when && values.get(when.variable) === when.equals) return `required when ${when.variable}=${when.equals}`;
  return undefined;
}

function shownText(definition: VariableDefinition, text: string): string {
  if (definition.secret) return "<redacted>";
  return definition.kind.redact ? definition.kind.redact(text) : text;
}

function fileProblem(path: string): string | undefined {
  try {
    if (!statSync(path).isFile()) return "not a regular file";
    accessSync(path, constants.R_OK);
    return undefined;
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    return code === "ENOENT" ? "no such file" : code === "EACCES" ? "permission denied" : (error as Error).message;
  }
}

/** Why `path` cannot be used (as a directory, or as a file to create), or undefined when it can. */
function locationProblem(path: string, directory: boolean): string | undefined {
  try {
    const stats = statSync(path);
    if (directory && !stats.isDirectory()) return "exists and is not a directory";
    if (!directory && stats.isDirectory()) return "is a directory";
    accessSync(path, constants.W_OK);
    return undefined;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "EACCES") return "not writable";
    if ((error as NodeJS.ErrnoException).code !== "ENOENT") return (error as Error).message;
  }
  // Missing: the nearest existing ancestor must be a writable directory.
  let parent = dirname(resolve(path));
  for (;;) {
    try {
      if (!statSync(parent).isDirectory()) return `${parent} is not a directory`;
      accessSync(parent, constants.W_OK);
      return undefined;
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      if (code === "EACCES") return `cannot create it: ${parent} is not writable`;
      if (code !== "ENOENT") return (error as Error).message;
      const up = dirname(parent);
      if (up === parent) return "no existing parent directory";
      parent = up;
    }
  }
}

function assemble(values: ReadonlyMap<string, unknown>): MyceliumConfig {
  const config = { network: {}, node: {}, database: {}, transactions: {}, replication: {}, sharding: {}, security: {}, performance: {}, cluster: {} };
  for (const definition of variableDefinitions) {
    if (values.has(definition.name)) setField(config as MyceliumConfig, definition, values.get(definition.name));
  }
  // Complete when no issue was reported: every non-optional field has a default or is required.
  return config as MyceliumConfig;
}

function setField(config: MyceliumConfig, definition: VariableDefinition, value: unknown): void {
  (config[definition.group] as Record<string, unknown>)[definition.field] = value;
}

function deepFreeze<T>(value: T): T {
  if (value !== null && typeof value === "object" && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const child of Object.values(value)) deepFreeze(child);
  }
  return value;
}
