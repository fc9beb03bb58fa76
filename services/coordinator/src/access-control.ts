import { AsyncLocalStorage } from "node:async_hooks";
import { router as routerProto, type common, type router } from "@mycelium/proto";
import { MyceliumError, type CallOptions, type ClientPool } from "@mycelium/rpc";
import { BoundedLoop } from "@mycelium/runtime";
import type { Logger } from "@mycelium/telemetry";
import type { Identity } from "@mycelium/tls";
import type { ControlStore, GrantStore } from "@mycelium/topology";
import { ClusterClient } from "./adapters/cluster-client";
import { describePrivileges, GrantIndex, requiredPrivileges } from "./core/privileges";

export interface AccessControlOptions {
  /** How often the control store's revision is polled for grant changes. @default 1000 */
  pollIntervalMs?: number;
  /**
   * With enforcement on, statements are refused (UNAVAILABLE, ACCESS_CONTROL_STALE) when the grants
   * could not be re-read for this long, rather than checked against grants that may have been revoked.
   * @default 30000
   */
  maxStalenessMs?: number;
  now?: () => number;
}

/**
 * SQL access control in the coordinator (DESIGN.md §4): every routed statement is checked against the
 * caller's privileges before anything runs. Grants live in the control store (GrantStore) and are cached
 * here; the cache follows the store's revision, polled every pollIntervalMs, so a grant or revoke made on
 * any coordinator takes effect on every coordinator within about one poll interval (immediately on the
 * one that made it). Off until an admin enforces it (docs/operations.md, "Access control").
 */
export class AccessControl {
  private index: GrantIndex | null = null;
  private loadedAtMs = 0;
  private loop: BoundedLoop | null = null;
  private readonly pollIntervalMs: number;
  private readonly maxStalenessMs: number;
  private readonly now: () => number;

  constructor(
    private readonly store: ControlStore,
    readonly grants: GrantStore,
    private readonly log: Logger,
    options: AccessControlOptions = {},
  ) {
    this.pollIntervalMs = options.pollIntervalMs ?? 1000;
    this.maxStalenessMs = options.maxStalenessMs ?? 30_000;
    this.now = options.now ?? Date.now;
  }

  /** Loads the grants (before the coordinator serves), then follows the store's revision. */
  async start(): Promise<void> {
    await this.refresh();
    this.loop = new BoundedLoop({ name: "grant cache", intervalMs: this.pollIntervalMs, logger: this.log }, async () => {
      const revision = await this.store.revision();
      if (this.index && revision === this.index.snapshot.revision) {
        this.loadedAtMs = this.now();
        return;
      }
      await this.refresh();
    }).start();
  }

  async stop(): Promise<void> {
    await this.loop?.stop();
  }

  /** Re-reads the grants now (after a change made through this coordinator). */
  async refresh(): Promise<void> {
    const startedAtMs = this.now();
    const snapshot = await this.grants.snapshot();
    this.index = new GrantIndex(snapshot);
    this.loadedAtMs = startedAtMs;
  }

  get enforced(): boolean {
    return this.index?.enforced ?? false;
  }

  /** Throws PERMISSION_DENIED (reason SQL_PRIVILEGE) naming every table and privilege the caller lacks. */
  check(caller: Identity | undefined, plan: router.RoutePlan): void {
    if (!caller) {
      // Every routed statement comes from a TransactionService call, which sets the caller; one that does not is a bug.
      throw new MyceliumError("PERMISSION_DENIED", "statement routed without a caller identity; refusing it", { reason: "SQL_PRIVILEGE" });
    }
    if (caller.role === "admin") return;
    const index = this.index;
    if (!index) throw new MyceliumError("UNAVAILABLE", "access control grants are not loaded yet; retry", { reason: "ACCESS_CONTROL_STALE" });
    if (!index.enforced) return;
    const ageMs = this.now() - this.loadedAtMs;
    if (ageMs > this.maxStalenessMs) {
      throw new MyceliumError("UNAVAILABLE", `access control grants could not be re-read for ${Math.round(ageMs / 1000)} s (the control store is unreachable); retry later`, {
        reason: "ACCESS_CONTROL_STALE",
      });
    }
    const missing = index.missing(caller.name, requiredPrivileges(plan));
    if (missing.length === 0) return;
    const first = missing[0]!;
    const statement = routerProto.statementKindToJSON(plan.kind).replace("STATEMENT_KIND_", "");
    throw new MyceliumError(
      "PERMISSION_DENIED",
      `identity ${caller.name} lacks ${describePrivileges(missing)} for this ${statement} statement; an admin can grant it: mycelium grant ${first.privilege} ON ${first.table} TO ${caller.name}`,
      { reason: "SQL_PRIVILEGE", details: { identity: caller.name, table: first.table, privilege: first.privilege } },
    );
  }
}

/** The identity of the client call being served, for the statements it routes. */
const callerScope = new AsyncLocalStorage<Identity>();

/** Runs `work` as `caller`: statements it routes are checked against that identity's privileges. */
export function asCaller<T>(caller: Identity, work: () => T): T {
  return callerScope.run(caller, work);
}

export function currentCaller(): Identity | undefined {
  return callerScope.getStore();
}

/**
 * The coordinator's cluster client with the privilege check on routing: the one place every statement
 * passes after analysis and before it runs (interactive, queued, one-shot, explain, and each re-route).
 */
export class AccessCheckedClusterClient extends ClusterClient {
  constructor(
    clients: ClientPool,
    routerAddress: string,
    private readonly access: AccessControl,
  ) {
    super(clients, routerAddress);
  }

  override async route(statement: common.Statement, options: CallOptions): Promise<router.RoutePlan> {
    const plan = await super.route(statement, options);
    this.access.check(currentCaller(), plan);
    return plan;
  }
}
