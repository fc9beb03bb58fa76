import type { Role } from "@mycelium/tls";

/**
 * Which roles may call which method, by full method path. A method missing from the table is denied
 * to everyone: new methods are closed until someone decides who may call them.
 */
export type AuthorizationTable = Readonly<Record<string, readonly Role[]>>;

export function isAuthorized(table: AuthorizationTable, methodPath: string, role: Role): boolean {
  return Object.hasOwn(table, methodPath) && (table[methodPath]?.includes(role) ?? false);
}

/**
 * Build a table for one service from a short form: method name → roles.
 * Throws when a name is not a method of the service, so a typo cannot silently deny (or allow).
 */
export function authorize<D extends Record<string, { path: string }>>(
  definition: D,
  rules: { [K in keyof D]: readonly Role[] },
): AuthorizationTable {
  const table: Record<string, readonly Role[]> = {};
  for (const name of Object.keys(rules)) {
    const method = definition[name];
    if (!method) throw new Error(`authorization rule for unknown method ${name}`);
    table[method.path] = rules[name as keyof D];
  }
  return table;
}
