import { MyceliumError } from "@mycelium/rpc";
import type { MyceliumClient, Params, Transaction, TransactionEvent } from "./client";
import type { QueryResult } from "./result";

/**
 * The seed's TransactionManager shape (begin / add_operation / commit / subscribe) over the SDK, for
 * programs written against it. New code can use MyceliumClient.transaction() directly.
 */
export class TransactionManager {
  private readonly open = new Map<string, Transaction>();

  constructor(private readonly client: MyceliumClient) {}

  async begin(): Promise<string> {
    const tx = await this.client.begin();
    this.open.set(tx.id, tx);
    return tx.id;
  }

  async addOperation(txId: string, sql: string, params: Params = []): Promise<void> {
    await this.get(txId).addOperation(sql, params);
  }

  async execute(txId: string, sql: string, params: Params = []): Promise<QueryResult> {
    return this.get(txId).execute(sql, params);
  }

  async commit(txId: string): Promise<QueryResult[]> {
    const tx = this.get(txId);
    this.open.delete(txId);
    return tx.commit();
  }

  async rollback(txId: string): Promise<void> {
    const tx = this.get(txId);
    this.open.delete(txId);
    await tx.rollback();
  }

  subscribe(options: { signal?: AbortSignal } = {}): AsyncIterable<TransactionEvent> {
    return this.client.subscribe(options);
  }

  private get(txId: string): Transaction {
    const tx = this.open.get(txId);
    if (!tx) throw new MyceliumError("NOT_FOUND", `transaction ${txId} was not begun by this manager or has finished`);
    return tx;
  }
}
