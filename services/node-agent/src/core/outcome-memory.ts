/**
 * Outcomes of recently finished local transactions, so a retried Commit or Abort (the first answer was
 * lost on the network) gets the same answer. Bounded: the oldest entries are forgotten first.
 */
export class OutcomeMemory {
  private readonly outcomes = new Map<string, "committed" | "aborted">();

  constructor(private readonly capacity = 100_000) {}

  remember(key: string, outcome: "committed" | "aborted"): void {
    this.outcomes.delete(key);
    this.outcomes.set(key, outcome);
    while (this.outcomes.size > this.capacity) {
      const oldest = this.outcomes.keys().next().value as string;
      this.outcomes.delete(oldest);
    }
  }

  get(key: string): "committed" | "aborted" | undefined {
    return this.outcomes.get(key);
  }
}
