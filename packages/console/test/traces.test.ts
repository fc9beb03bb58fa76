import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import * as fc from "fast-check";
import type { SpanRecord } from "@mycelium/telemetry";
import {
  encodeOtlpProtobuf,
  hasEntrySpan,
  layoutWaterfall,
  matchesId,
  parseSpanLine,
  passesFilter,
  renderTransaction,
  spansFromOtlpJson,
  spansFromOtlpProtobuf,
  TraceAssembler,
  TraceFileFollower,
  type AssembledTransaction,
} from "@mycelium/console";

let next = 0;
function span(fields: Partial<SpanRecord> & { name: string; startTimeMs: number; durationMs: number }): SpanRecord {
  return { traceId: "t1", spanId: `s${++next}`, service: "coordinator", kind: 0, status: { code: 0 }, attributes: {}, ...fields };
}

/** A cross-shard transfer as the services record it: the coordinator's request, routing, two participants, 2PC. */
function transfer(traceId: string, txId: string, at = 0): SpanRecord[] {
  const root = span({ traceId, spanId: `${traceId}-root`, parentSpanId: "client-side", kind: 1, name: "TransactionService/ExecuteTransaction", startTimeMs: at, durationMs: 50, attributes: { "mycelium.tx_id": txId, "mycelium.tx_outcome": "committed", "mycelium.tx_commit_kind": "two_phase" } });
  const route = span({ traceId, spanId: `${traceId}-route`, parentSpanId: root.spanId, name: "route", startTimeMs: at + 1, durationMs: 4, attributes: { "mycelium.tables": ["accounts"] } });
  const routeServer = span({ traceId, parentSpanId: route.spanId, kind: 1, service: "shard-router", instance: "shard-router", name: "ShardRouterService/Route", startTimeMs: at + 2, durationMs: 2 });
  const prepare = span({ traceId, spanId: `${traceId}-prepare`, parentSpanId: root.spanId, name: "2pc.prepare", startTimeMs: at + 10, durationMs: 20 });
  const prepareA = span({ traceId, parentSpanId: prepare.spanId, kind: 1, service: "node-agent", instance: "node-a", name: "NodeAgentService/Prepare", startTimeMs: at + 12, durationMs: 5, attributes: { "mycelium.shard_id": "accounts-0001", "mycelium.tx_id": txId } });
  const prepareB = span({ traceId, parentSpanId: prepare.spanId, kind: 1, service: "node-agent", instance: "node-b", name: "NodeAgentService/Prepare", startTimeMs: at + 13, durationMs: 8, attributes: { "mycelium.shard_id": "accounts-0002", "mycelium.tx_id": txId } });
  const commit = span({ traceId, parentSpanId: root.spanId, name: "2pc.commit", startTimeMs: at + 35, durationMs: 10 });
  // As a file written by several processes has them: children before parents, the root last.
  return [routeServer, route, prepareB, prepareA, prepare, commit, root];
}

describe("assembling traces into transactions", () => {
  test("a trace is final once its entry span arrived and nothing more came for the settle time", () => {
    const assembler = new TraceAssembler({ settleMs: 100 });
    const spans = transfer("t1", "tx-1");
    for (const s of spans.slice(0, -1)) expect(assembler.add(s, 0)).toEqual([]);
    // Everything but the root: the top spans do not cover the whole trace yet.
    expect(hasEntrySpan(spans.slice(0, -1))).toBe(false);
    expect(assembler.poll(1_000)).toEqual([]);
    assembler.add(spans[spans.length - 1]!, 1_000);
    expect(assembler.poll(1_050)).toEqual([]);
    const [tx] = assembler.poll(1_100);
    expect(tx).toMatchObject({ txId: "tx-1", traceIds: ["t1"], outcome: "committed", complete: true });
    expect(tx!.spans).toHaveLength(7);
    // A straggler of a trace already shown is dropped, not shown as a trace of its own.
    assembler.add(span({ traceId: "t1", name: "late", startTimeMs: 60, durationMs: 1 }), 1_200);
    expect(assembler.lateSpans).toBe(1);
    expect(assembler.flush()).toEqual([]);
  });

  test("an interactive transaction's requests are one trace each; the one that ended it brings the others along", () => {
    const assembler = new TraceAssembler({ settleMs: 0 });
    const begin = span({ traceId: "b", kind: 1, name: "TransactionService/Begin", startTimeMs: 0, durationMs: 1, attributes: { "mycelium.tx_id": "tx-2" } });
    const execute = span({ traceId: "e", kind: 1, name: "TransactionService/Execute", startTimeMs: 5, durationMs: 3, attributes: { "mycelium.tx_id": "tx-2" } });
    const commit = span({ traceId: "c", kind: 1, name: "TransactionService/Commit", startTimeMs: 20, durationMs: 9, attributes: { "mycelium.tx_id": "tx-2", "mycelium.tx_outcome": "aborted" } });
    const heartbeat = span({ traceId: "h", kind: 2, service: "node-agent", name: "ShardRouterService/Heartbeat", startTimeMs: 7, durationMs: 1 });
    assembler.add(begin, 0);
    assembler.add(heartbeat, 0);
    assembler.add(execute, 0);
    const first = assembler.poll(10);
    // The heartbeat is a trace of its own, with no transaction.
    expect(first.map((t) => [t.txId, t.traceIds])).toEqual([[null, ["h"]]]);
    assembler.add(commit, 20);
    const [tx] = assembler.poll(30);
    expect(tx).toMatchObject({ txId: "tx-2", traceIds: ["b", "e", "c"], outcome: "aborted" });
    expect(tx!.spans.map((s) => s.name)).toEqual(["TransactionService/Begin", "TransactionService/Execute", "TransactionService/Commit"]);
  });

  test("the commit's trace waits for an earlier request's trace still open (its participant's span came late)", () => {
    const assembler = new TraceAssembler({ settleMs: 100 });
    const execute = span({ traceId: "e", kind: 1, name: "TransactionService/Execute", startTimeMs: 0, durationMs: 10, attributes: { "mycelium.tx_id": "tx-4" } });
    const commit = span({ traceId: "c", kind: 1, name: "TransactionService/Commit", startTimeMs: 20, durationMs: 10, attributes: { "mycelium.tx_id": "tx-4", "mycelium.tx_outcome": "committed" } });
    const late = span({ traceId: "e", kind: 1, parentSpanId: "elsewhere", service: "node-agent", name: "NodeAgentService/Execute", startTimeMs: 2, durationMs: 5, attributes: { "mycelium.tx_id": "tx-4" } });
    assembler.add(execute, 0);
    assembler.add(commit, 10);
    // The node-agent's span of the Execute arrives after the commit's trace: the Execute trace is open again.
    assembler.add(late, 100);
    expect(assembler.poll(110)).toEqual([]);
    const [tx] = assembler.poll(200);
    expect(tx).toMatchObject({ txId: "tx-4", traceIds: ["e", "c"], complete: true });
    expect(tx!.spans).toHaveLength(3);
  });

  test("a child may seem to end up to a millisecond after its parent (start times are whole milliseconds)", () => {
    const root = span({ traceId: "q", spanId: "root", parentSpanId: "client", kind: 1, name: "TransactionService/Execute", startTimeMs: 100, durationMs: 5.2 });
    const child = span({ traceId: "q", parentSpanId: "root", kind: 2, name: "NodeAgentService/Execute", startTimeMs: 101, durationMs: 4.9 });
    expect(hasEntrySpan([child, root])).toBe(true);
    // More than that is not the entry: the parent of the late one is still to come.
    expect(hasEntrySpan([{ ...child, durationMs: 6.5 }, root])).toBe(false);
  });

  test("bounded: a trace that never completes is emitted incomplete after maxWaitMs, and at most maxOpenTraces are held", () => {
    const assembler = new TraceAssembler({ maxWaitMs: 1_000, maxOpenTraces: 2 });
    const orphan = (traceId: string) => span({ traceId, kind: 2, parentSpanId: "missing", name: "client call", startTimeMs: 0, durationMs: 1 });
    assembler.add(orphan("x"), 0);
    assembler.add(orphan("y"), 0);
    const evicted = assembler.add(orphan("z"), 0);
    expect(evicted.map((t) => [t.traceIds[0], t.complete])).toEqual([["x", false]]);
    expect(assembler.openTraceCount).toBe(2);
    expect(assembler.poll(999)).toEqual([]);
    expect(assembler.poll(1_000).map((t) => t.traceIds[0])).toEqual(["y", "z"]);
    // A transaction whose end never comes (an idle timeout ended it) is emitted incomplete too.
    const begun = new TraceAssembler({ maxWaitMs: 1_000, settleMs: 0 });
    begun.add(span({ traceId: "b2", kind: 1, name: "TransactionService/Begin", startTimeMs: 0, durationMs: 1, attributes: { "mycelium.tx_id": "tx-3" } }), 0);
    expect(begun.poll(10)).toEqual([]);
    expect(begun.poll(1_000)).toMatchObject([{ txId: "tx-3", outcome: "unknown", complete: false }]);
  });

  test("property: whatever order the spans arrive in, each transfer is emitted once, whole", () => {
    fc.assert(
      fc.property(fc.shuffledSubarray([...transfer("p1", "tx-p1"), ...transfer("p2", "tx-p2", 100)], { minLength: 14, maxLength: 14 }), (spans) => {
        const assembler = new TraceAssembler({ settleMs: 10 });
        const out: AssembledTransaction[] = [];
        spans.forEach((s, i) => out.push(...assembler.add(s, i)));
        out.push(...assembler.poll(1_000));
        return out.length === 2 && out.every((t) => t.spans.length === 7 && t.complete && t.outcome === "committed");
      }),
    );
  });
});

describe("the waterfall", () => {
  const names = (instance: string) => ({ "node-a": "v1", "node-b": "v2" })[instance];

  test("spans nest under their parents in start order, on one time axis", () => {
    const layout = layoutWaterfall(transfer("w", "tx-w", 1000), 50, names);
    expect(layout.totalMs).toBe(50);
    expect(layout.rows.map((r) => `${"  ".repeat(r.depth)}${r.who}: ${r.label}`)).toEqual([
      "coordinator: TransactionService/ExecuteTransaction",
      "  coordinator: route accounts",
      "    shard-router: ShardRouterService/Route",
      "  coordinator: 2pc.prepare",
      "    node-agent v1: NodeAgentService/Prepare accounts-0001",
      "    node-agent v2: NodeAgentService/Prepare accounts-0002",
      "  coordinator: 2pc.commit",
    ]);
    const root = layout.rows[0]!;
    expect([root.barStart, root.barEnd]).toEqual([0, 50]);
    const prepare = layout.rows[3]!;
    expect([prepare.barStart, prepare.barEnd, prepare.offsetMs]).toEqual([10, 30, 10]);
  });

  test("property: every bar lies within the width and is at least one cell", () => {
    fc.assert(
      fc.property(fc.array(fc.record({ start: fc.double({ min: 0, max: 1e6, noNaN: true }), duration: fc.double({ min: 0, max: 1e6, noNaN: true }) }), { minLength: 1, maxLength: 20 }), fc.integer({ min: 1, max: 200 }), (items, width) => {
        const layout = layoutWaterfall(items.map((item, i) => span({ traceId: "f", spanId: `f${i}`, name: "x", startTimeMs: item.start, durationMs: item.duration })), width);
        return layout.rows.length === items.length && layout.rows.every((r) => r.barStart >= 0 && r.barEnd <= width && r.barEnd > r.barStart);
      }),
    );
  });

  test("a cycle in a malformed file shows each span once", () => {
    const a = span({ traceId: "c", spanId: "a", parentSpanId: "b", name: "a", startTimeMs: 0, durationMs: 1 });
    const b = span({ traceId: "c", spanId: "b", parentSpanId: "a", name: "b", startTimeMs: 0, durationMs: 1 });
    expect(layoutWaterfall([a, b], 10).rows).toHaveLength(0);
    expect(layoutWaterfall([a, b, span({ traceId: "c", spanId: "r", name: "r", startTimeMs: 0, durationMs: 2 })], 10).rows).toHaveLength(1);
  });

  test("the text names the transaction, outcome, tables, participants and errors", () => {
    const spans = transfer("r", "tx-r");
    spans[2] = { ...spans[2]!, status: { code: 2, message: "database is locked" } };
    const text = renderTransaction({ txId: "tx-r", traceIds: ["r"], spans, outcome: "committed", complete: true }, { barWidth: 20, names }).join("\n");
    expect(text).toContain("tx tx-r · committed (two-phase) · 50.0 ms · tables accounts · 1 error");
    expect(text).toContain("participants accounts-0001@v1, accounts-0002@v2");
    expect(text).toMatch(/node-agent v2 +NodeAgentService\/Prepare accounts-0002 +│.*│ +8\.0 ms +✗ database is locked/);
    expect(text).not.toContain("\u001b[");
    expect(renderTransaction({ txId: null, traceIds: ["q"], spans: [], outcome: "unknown", complete: false }).join("\n")).toContain("trace q");
  });

  test("filters: transactions only, slow, errors, table; ids by prefix of the transaction or a trace", () => {
    const tx: AssembledTransaction = { txId: "abc-123", traceIds: ["ffee00"], spans: transfer("f", "abc-123"), outcome: "committed", complete: true };
    expect(passesFilter(tx, {})).toBe(true);
    expect(passesFilter({ ...tx, txId: null }, {})).toBe(false);
    expect(passesFilter({ ...tx, txId: null }, { transactionsOnly: false })).toBe(true);
    expect(passesFilter(tx, { slowerThanMs: 50 })).toBe(true);
    expect(passesFilter(tx, { slowerThanMs: 51 })).toBe(false);
    expect(passesFilter(tx, { errorsOnly: true })).toBe(false);
    expect(passesFilter({ ...tx, outcome: "aborted" }, { errorsOnly: true })).toBe(true);
    expect(passesFilter(tx, { table: "accounts" })).toBe(true);
    expect(passesFilter(tx, { table: "users" })).toBe(false);
    expect(matchesId(tx, "ABC")).toBe(true);
    expect(matchesId(tx, "ffee")).toBe(true);
    expect(matchesId(tx, "")).toBe(false);
    expect(matchesId(tx, "123")).toBe(false);
  });
});

describe("span sources", () => {
  const otlp = {
    resourceSpans: [
      {
        resource: { attributes: [{ key: "service.name", value: { stringValue: "node-agent" } }, { key: "service.instance.id", value: { stringValue: "node-a" } }] },
        scopeSpans: [
          {
            spans: [
              {
                traceId: "0af7651916cd43dd8448eb211c80319c",
                spanId: "b7ad6b7169203331",
                parentSpanId: "00f067aa0ba902b7",
                name: "NodeAgentService/Prepare",
                kind: 2,
                startTimeUnixNano: "1700000000000000000",
                endTimeUnixNano: "1700000000002500000",
                attributes: [
                  { key: "mycelium.shard_id", value: { stringValue: "accounts-0001" } },
                  { key: "mycelium.tables", value: { arrayValue: { values: [{ stringValue: "accounts" }] } } },
                  { key: "mycelium.participants", value: { intValue: "2" } },
                ],
                status: { code: 2, message: "no" },
              },
              { spanId: "", name: "no ids" },
            ],
          },
        ],
      },
    ],
  };
  const expected: SpanRecord = {
    traceId: "0af7651916cd43dd8448eb211c80319c",
    spanId: "b7ad6b7169203331",
    parentSpanId: "00f067aa0ba902b7",
    name: "NodeAgentService/Prepare",
    service: "node-agent",
    instance: "node-a",
    kind: 1,
    startTimeMs: 1700000000000,
    durationMs: 2.5,
    status: { code: 2, message: "no" },
    attributes: { "mycelium.shard_id": "accounts-0001", "mycelium.tables": ["accounts"], "mycelium.participants": 2 },
  };

  test("OTLP JSON becomes the trace file's span records (OTLP kinds are one above the API's)", () => {
    expect(spansFromOtlpJson(otlp)).toEqual([expected]);
  });

  test("OTLP protobuf decodes to the same records", () => {
    expect(spansFromOtlpProtobuf(encodeOtlpProtobuf(otlp))).toEqual([expected]);
  });

  test("a trace file line, or null for what is not one", () => {
    expect(parseSpanLine(JSON.stringify(expected))).toEqual(expected);
    expect(parseSpanLine('{"traceId":"x"')).toBeNull();
    expect(parseSpanLine("garbage")).toBeNull();
    expect(parseSpanLine('{"traceId":"x","spanId":"y","name":"n"}')).toBeNull();
  });

  test("the file follower reads appended lines, holds a partial line, and starts over after truncation", () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "myc-follow-"));
    const file = path.join(dir, "traces.jsonl");
    try {
      fs.writeFileSync(file, JSON.stringify({ ...expected, name: "before the tail" }) + "\n");
      const seen: string[] = [];
      const follower = new TraceFileFollower({ path: file, onSpans: (spans) => seen.push(...spans.map((s) => s.name)) });
      follower.check();
      const line = JSON.stringify({ ...expected, name: "appended" });
      fs.appendFileSync(file, line.slice(0, 20));
      follower.check();
      expect(seen).toEqual([]);
      fs.appendFileSync(file, line.slice(20) + "\nnot json\n");
      follower.check();
      expect(seen).toEqual(["appended"]);
      fs.writeFileSync(file, JSON.stringify({ ...expected, name: "after truncation" }) + "\n");
      follower.check();
      expect(seen).toEqual(["appended", "after truncation"]);
      follower.stop();
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
