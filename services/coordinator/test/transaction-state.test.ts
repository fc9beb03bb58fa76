import fc from "fast-check";
import {
  canTransition,
  InvalidTransition,
  isFinal,
  planCommit,
  TransactionRecord,
  type Participant,
  type TransactionState,
} from "../src/core/transaction-state";

const states: TransactionState[] = ["active", "preparing", "prepared", "committing", "committed", "aborting", "aborted"];

/**
 * The transitions of the diagram in transaction-state.ts's header, written out independently of the
 * implementation's table:
 *
 *   active ──► preparing ──► prepared ──► committing ──► committed
 *     │            │             │
 *     │            └─────────────┴──► aborting ──► aborted
 *     ├──► committing (one phase: a single written shard) ──► committed | aborted
 *     └──► aborting ──► aborted
 */
const diagram = new Set([
  "active→preparing",
  "preparing→prepared",
  "prepared→committing",
  "committing→committed",
  "preparing→aborting",
  "prepared→aborting",
  "aborting→aborted",
  "active→committing",
  "committing→aborted",
  "active→aborting",
]);

/** A legal path from active to each state. */
const pathTo: Record<TransactionState, TransactionState[]> = {
  active: [],
  preparing: ["preparing"],
  prepared: ["preparing", "prepared"],
  committing: ["preparing", "prepared", "committing"],
  committed: ["preparing", "prepared", "committing", "committed"],
  aborting: ["preparing", "aborting"],
  aborted: ["aborting", "aborted"],
};

function recordIn(state: TransactionState): TransactionRecord {
  const record = new TransactionRecord("tx-1", 1000);
  for (const step of pathTo[state]) record.transition(step);
  expect(record.state).toBe(state);
  return record;
}

const pairs = states.flatMap((from) => states.map((to) => [from, to] as const));

describe("transitions", () => {
  it("the diagram has exactly the ten transitions listed", () => {
    expect(pairs.filter(([from, to]) => canTransition(from, to)).map(([from, to]) => `${from}→${to}`).sort()).toEqual([...diagram].sort());
  });

  it.each(pairs.filter(([from, to]) => diagram.has(`${from}→${to}`)))("%s → %s is allowed", (from, to) => {
    const record = recordIn(from);
    expect(canTransition(from, to)).toBe(true);
    expect(record.transition(to)).toBe(from);
    expect(record.state).toBe(to);
  });

  it.each(pairs.filter(([from, to]) => !diagram.has(`${from}→${to}`)))("%s → %s throws InvalidTransition and changes nothing", (from, to) => {
    const record = recordIn(from);
    expect(canTransition(from, to)).toBe(false);
    let thrown: unknown;
    try {
      record.transition(to);
    } catch (error) {
      thrown = error;
    }
    expect(thrown).toBeInstanceOf(InvalidTransition);
    expect((thrown as Error).name).toBe("InvalidTransition");
    expect((thrown as Error).message).toBe(`transaction tx-1: illegal transition ${from} → ${to}`);
    expect(record.state).toBe(from);
  });

  it("a record starts active", () => {
    const record = new TransactionRecord("tx-2", 42);
    expect(record.state).toBe("active");
    expect(record.startedAtMs).toBe(42);
    expect(record.lastActivityAtMs).toBe(42);
    expect(record.participants).toEqual([]);
  });

  it("isFinal holds for committed and aborted only, and nothing leaves them", () => {
    expect(states.filter(isFinal).sort()).toEqual(["aborted", "committed"]);
    for (const final of states.filter(isFinal)) for (const to of states) expect(canTransition(final, to)).toBe(false);
  });

  it("any random sequence of attempted transitions succeeds exactly where the diagram allows", () => {
    fc.assert(
      fc.property(fc.array(fc.constantFrom(...states), { maxLength: 30 }), (targets) => {
        const record = new TransactionRecord("tx-walk", 0);
        for (const to of targets) {
          const from = record.state;
          if (diagram.has(`${from}→${to}`)) {
            expect(record.transition(to)).toBe(from);
          } else {
            expect(() => record.transition(to)).toThrow(InvalidTransition);
            expect(record.state).toBe(from);
          }
        }
      }),
    );
  });
});

function participant(shardId: string, written: boolean, extra: Partial<Participant> = {}): Participant {
  return { shardId, epoch: 1, nodeId: `node-of-${shardId}`, address: `10.0.0.1:${shardId.length}`, written, locked: written, ...extra } as Participant;
}

describe("planCommit", () => {
  const participants = fc.uniqueArray(
    fc.record({ shardId: fc.string({ minLength: 1, maxLength: 6 }), written: fc.boolean(), epoch: fc.nat(5) }),
    { selector: (p) => p.shardId, maxLength: 12 },
  ).map((list) => list.map((p) => participant(p.shardId, p.written, { epoch: p.epoch })));

  it("voters are exactly the written participants, the rest are released; the kind follows the count", () => {
    fc.assert(
      fc.property(participants, (list) => {
        const plan = planCommit(list);
        const written = list.filter((p) => p.written);
        const read = list.filter((p) => !p.written);
        expect(plan.release).toEqual(read);
        if (written.length === 0) {
          expect(plan.kind).toBe("read-only");
        } else if (written.length === 1) {
          expect(plan).toEqual({ kind: "one-phase", participant: written[0], release: read });
        } else {
          expect(plan).toEqual({ kind: "two-phase", voters: written, release: read });
        }
      }),
    );
  });

  it("examples", () => {
    expect(planCommit([]).kind).toBe("read-only");
    expect(planCommit([participant("a", false), participant("b", false)]).kind).toBe("read-only");
    const one = planCommit([participant("a", false), participant("b", true)]);
    expect(one.kind === "one-phase" && one.participant.shardId).toBe("b");
    const two = planCommit([participant("a", true), participant("b", false), participant("c", true)]);
    expect(two.kind === "two-phase" && two.voters.map((p) => p.shardId)).toEqual(["a", "c"]);
    expect(two.release.map((p) => p.shardId)).toEqual(["b"]);
  });
});

describe("TransactionRecord.touch", () => {
  it("records each shard once; written is sticky", () => {
    const record = new TransactionRecord("tx-3", 0);
    record.touch(participant("s1", false));
    expect(record.participant("s1")?.written).toBe(false);
    record.touch(participant("s1", true));
    expect(record.participant("s1")?.written).toBe(true);
    record.touch(participant("s1", false));
    expect(record.participant("s1")?.written).toBe(true);
    record.touch(participant("s2", false));
    expect(record.participants.map((p) => [p.shardId, p.written])).toEqual([
      ["s1", true],
      ["s2", false],
    ]);
    expect(record.participant("s3")).toBeUndefined();
  });

  it("keeps its own copy: later changes to the caller's object do not leak in, nor ours out", () => {
    const record = new TransactionRecord("tx-4", 0);
    const first = participant("s1", false);
    record.touch(first);
    first.written = true;
    first.epoch = 99;
    expect(record.participant("s1")).toMatchObject({ written: false, epoch: 1 });
    const second = participant("s1", true);
    record.touch(second);
    expect(first.written).toBe(true);
    expect(record.participant("s1")?.written).toBe(true);
    const again = participant("s1", false);
    record.touch(again);
    expect(again.written).toBe(false);
  });

  it("throws when the shard moved (another epoch or another node), naming both placements, and changes nothing", () => {
    const record = new TransactionRecord("tx-5", 0);
    record.touch(participant("s1", false, { epoch: 3, nodeId: "n1" }));
    expect(() => record.touch(participant("s1", true, { epoch: 4, nodeId: "n1" }))).toThrow(
      "shard s1 moved during transaction tx-5 (epoch 3 on n1, now 4 on n1)",
    );
    expect(() => record.touch(participant("s1", true, { epoch: 3, nodeId: "n2" }))).toThrow(
      "shard s1 moved during transaction tx-5 (epoch 3 on n1, now 3 on n2)",
    );
    expect(record.participant("s1")).toMatchObject({ epoch: 3, nodeId: "n1", written: false });
  });

  it("the address may change without counting as a move", () => {
    const record = new TransactionRecord("tx-6", 0);
    record.touch(participant("s1", false, { address: "10.0.0.1:1" }));
    expect(() => record.touch(participant("s1", true, { address: "10.0.0.2:1" }))).not.toThrow();
    expect(record.participant("s1")?.written).toBe(true);
  });
});
