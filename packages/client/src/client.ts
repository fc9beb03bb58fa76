import { ClientPool, isMyceliumError, MyceliumError, type PromiseClient } from "@mycelium/rpc";
import { coordinator, router, toValue, type common, type SqlValue } from "@mycelium/proto";
import { createSilentTelemetry, type Telemetry } from "@mycelium/telemetry";
import { defaultProtocolVersion, type ClientOptions } from "./options";
import { toQueryResult, type QueryResult } from "./result";

export type Params = readonly SqlValue[];

export interface StatementInput {
  sql: string;
  params?: Params;
}

export type TransactionState = "none" | "active" | "preparing" | "prepared" | "committing" | "committed" | "aborting" | "aborted" | "unknown";

export type TransactionEvent =
  | { type: "state_changed"; txId: string; oldState: TransactionState; newState: TransactionState; atMs: number }
  | { type: "completed"; txId: string; success: boolean; durationMs: number; atMs: number };

/**
 * The TypeScript SDK. One instance holds the channels to the cluster; reuse it.
 *
 *   const db = new MyceliumClient({ coordinatorAddress, tls, networkId });
 *   await db.execute("INSERT INTO users (user_id, name) VALUES (?, ?)", [1, "ada"]);
 *   await db.transaction(async (tx) => { await tx.execute(...); await tx.execute(...); });
 */
export class MyceliumClient {
  readonly pool: ClientPool;
  private readonly transactions: PromiseClient<typeof coordinator.TransactionServiceService>;
  private readonly routerClient: PromiseClient<typeof router.ShardRouterServiceService> | null;
  /** In-doubt transactions: list, inspect, force (admin certificate). */
  readonly transactionAdmin: PromiseClient<typeof coordinator.TransactionAdminServiceService>;
  private readonly deadlineMs: number;
  private readonly maxTransactionAttempts: number;

  constructor(options: ClientOptions, telemetry: Telemetry = createSilentTelemetry("client")) {
    this.pool = new ClientPool({
      telemetry,
      tls: options.tls,
      verifyHostname: options.verifyHostname ?? true,
      networkId: options.networkId,
      protocolVersion: options.protocolVersion ?? defaultProtocolVersion,
      defaultDeadlineMs: options.deadlineMs ?? 30_000,
    });
    this.deadlineMs = options.deadlineMs ?? 30_000;
    this.maxTransactionAttempts = options.maxTransactionAttempts ?? 3;
    this.transactions = this.pool.service(coordinator.TransactionServiceService, options.coordinatorAddress);
    this.transactionAdmin = this.pool.service(coordinator.TransactionAdminServiceService, options.coordinatorAddress);
    this.routerClient = options.routerAddress ? this.pool.service(router.ShardRouterServiceService, options.routerAddress) : null;
  }

  /** Run one statement as its own transaction. */
  async execute(sql: string, params: Params = []): Promise<QueryResult> {
    const response = await this.transactions.execute(
      coordinator.ExecuteRequest.create({ txId: "", statement: statement(sql, params) }),
    );
    return toQueryResult(response.result);
  }

  /** Run statements atomically in one call; all commit or none. */
  async executeTransaction(statements: readonly StatementInput[]): Promise<{ txId: string; results: QueryResult[] }> {
    const response = await this.transactions.executeTransaction(
      coordinator.ExecuteTransactionRequest.create({ statements: statements.map((s) => statement(s.sql, s.params ?? [])) }),
    );
    return { txId: response.txId, results: response.results.map(toQueryResult) };
  }

  /** Open an interactive distributed transaction. Commit or roll it back. */
  /**
   * Open an interactive distributed transaction. Reads lock the shards they read until the end (so
   * transactions are serializable across shards) unless `readCommitted` is set.
   */
  async begin(options: { timeoutMs?: number; readCommitted?: boolean } = {}): Promise<Transaction> {
    const response = await this.transactions.begin(coordinator.BeginRequest.create({ timeoutMs: options.timeoutMs ?? 0, readCommitted: options.readCommitted ?? false }));
    return new Transaction(response.txId, this.transactions);
  }

  /**
   * Run `work` in a transaction and commit it; roll back if it throws. When the cluster aborts the
   * transaction (a retryable ABORTED), `work` runs again, up to maxTransactionAttempts times in all.
   */
  async transaction<T>(work: (tx: Transaction) => Promise<T>): Promise<T> {
    for (let attempt = 1; ; attempt++) {
      const tx = await this.begin();
      try {
        const result = await work(tx);
        await tx.commit();
        return result;
      } catch (error) {
        await tx.rollback().catch(() => undefined);
        if (!(isMyceliumError(error) && error.code === "ABORTED" && attempt < this.maxTransactionAttempts)) throw error;
      }
    }
  }

  /** Transaction events (all, or of one transaction) until the signal aborts. */
  async *subscribe(options: { txId?: string; signal?: AbortSignal } = {}): AsyncIterable<TransactionEvent> {
    const stream = this.transactions.subscribe(coordinator.SubscribeRequest.create({ txId: options.txId ?? "" }), {
      ...(options.signal ? { signal: options.signal } : {}),
    });
    for await (const message of stream) {
      const event = message.event;
      if (event?.$case === "stateChanged") {
        yield {
          type: "state_changed",
          txId: event.value.txId,
          oldState: stateName(event.value.oldState),
          newState: stateName(event.value.newState),
          atMs: message.atMs,
        };
      } else if (event?.$case === "completed") {
        yield { type: "completed", txId: event.value.txId, success: event.value.success, durationMs: event.value.durationMs, atMs: message.atMs };
      }
    }
  }

  /** How a statement would be routed, without running it. */
  async explain(sql: string, params: Params = []): Promise<router.RoutePlan> {
    const response = await this.transactions.explain(coordinator.ExplainRequest.create({ statement: statement(sql, params) }), { idempotent: true });
    if (!response.plan) throw new MyceliumError("INTERNAL", "coordinator returned no plan");
    return response.plan;
  }

  /** Administration through the shard-router (needs routerAddress and an admin certificate for changes). */
  get router(): PromiseClient<typeof router.ShardRouterServiceService> {
    if (!this.routerClient) throw new MyceliumError("FAILED_PRECONDITION", "this client was created without routerAddress");
    return this.routerClient;
  }

  get callDeadlineMs(): number {
    return this.deadlineMs;
  }

  close(): void {
    this.pool.close();
  }
}

/** An open distributed transaction. */
export class Transaction {
  private finished = false;

  constructor(
    readonly id: string,
    private readonly service: PromiseClient<typeof coordinator.TransactionServiceService>,
  ) {}

  /** Run a statement now, inside the transaction; see its effects in later statements. */
  async execute(sql: string, params: Params = []): Promise<QueryResult> {
    const response = await this.service.execute(coordinator.ExecuteRequest.create({ txId: this.id, statement: statement(sql, params) }));
    return toQueryResult(response.result);
  }

  /** Queue a statement to run at commit (the seed's add_operation). */
  async addOperation(sql: string, params: Params = []): Promise<number> {
    const response = await this.service.addOperation(coordinator.AddOperationRequest.create({ txId: this.id, statement: statement(sql, params) }));
    return response.queued;
  }

  /** Commit; returns the results of queued operations. Throws ABORTED if the cluster could not commit. */
  async commit(): Promise<QueryResult[]> {
    this.finished = true;
    const response = await this.service.commit(coordinator.CommitRequest.create({ txId: this.id }));
    return response.results.map(toQueryResult);
  }

  async rollback(): Promise<void> {
    if (this.finished) return;
    this.finished = true;
    await this.service.rollback(coordinator.RollbackRequest.create({ txId: this.id }), { idempotent: true });
  }
}

function statement(sql: string, params: Params): common.Statement {
  return { sql, params: params.map(toValue) };
}

const stateNames: Record<number, TransactionState> = {
  [coordinator.TransactionState.TRANSACTION_STATE_UNSPECIFIED]: "none",
  [coordinator.TransactionState.TRANSACTION_STATE_ACTIVE]: "active",
  [coordinator.TransactionState.TRANSACTION_STATE_PREPARING]: "preparing",
  [coordinator.TransactionState.TRANSACTION_STATE_PREPARED]: "prepared",
  [coordinator.TransactionState.TRANSACTION_STATE_COMMITTING]: "committing",
  [coordinator.TransactionState.TRANSACTION_STATE_COMMITTED]: "committed",
  [coordinator.TransactionState.TRANSACTION_STATE_ABORTING]: "aborting",
  [coordinator.TransactionState.TRANSACTION_STATE_ABORTED]: "aborted",
};

function stateName(state: coordinator.TransactionState): TransactionState {
  return stateNames[state] ?? "unknown";
}
