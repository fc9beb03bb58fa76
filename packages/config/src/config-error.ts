export interface ConfigIssue {
  /** The environment variable at fault, e.g. "MYCELIUM_PORT". */
  readonly variable: string;
  /** What a valid value looks like. */
  readonly expected: string;
  /** The value found, secrets redacted; absent when the variable is not set. */
  readonly received?: string;
  /** Why a well-formed value was still refused, e.g. "no such file". */
  readonly detail?: string;
  readonly reason: "invalid" | "missing" | "unknown";
}

/**
 * Thrown by loadConfig with every problem at once, so an operator fixes a deployment in one round.
 * The message is one line per issue, e.g. `MYCELIUM_PORT: expected an integer port 0-65535, got "abc"`.
 */
export class ConfigError extends Error {
  override readonly name = "ConfigError";
  readonly issues: ReadonlyArray<ConfigIssue>;

  constructor(issues: ReadonlyArray<ConfigIssue>) {
    super(issues.map(formatIssue).join("\n"));
    this.issues = Object.freeze([...issues]);
  }
}

export function formatIssue(issue: ConfigIssue): string {
  switch (issue.reason) {
    case "missing":
      return `${issue.variable}: expected ${issue.expected}, but it is not set`;
    case "unknown":
      return `${issue.variable}: unknown variable, expected ${issue.expected}`;
    case "invalid":
      return (
        `${issue.variable}: expected ${issue.expected}, got ${issue.received === undefined ? "nothing" : JSON.stringify(issue.received)}` +
        (issue.detail === undefined ? "" : ` (${issue.detail})`)
      );
  }
}
