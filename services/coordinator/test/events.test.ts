import { EventHub, SubscriberOverflow, type Subscription, type TransactionEvent } from "../src/core/events";

/** Reads until the iterator ends or throws; returns what arrived and the error, if any. */
async function drain(subscription: Subscription): Promise<{ events: TransactionEvent[]; error: unknown }> {
  const events: TransactionEvent[] = [];
  try {
    for await (const event of subscription) events.push(event);
    return { events, error: null };
  } catch (error) {
    return { events, error };
  }
}

function changed(hub: EventHub, txId: string, newState: "active" | "preparing" | "committed" = "active", atMs = 1000): void {
  hub.emit({ type: "state_changed", txId, oldState: "none", newState }, atMs);
}

describe("EventHub", () => {
  it("delivers events in the order emitted, numbered and stamped, to every subscriber", async () => {
    const hub = new EventHub();
    const a = hub.subscribe(null);
    const b = hub.subscribe(null);
    changed(hub, "t1", "active", 10);
    changed(hub, "t2", "active", 11);
    hub.emit({ type: "completed", txId: "t1", success: true, durationMs: 5 }, 12);
    changed(hub, "t2", "preparing", 13);
    hub.closeAll();
    const expected = [
      { type: "state_changed", txId: "t1", oldState: "none", newState: "active", sequence: 1, atMs: 10 },
      { type: "state_changed", txId: "t2", oldState: "none", newState: "active", sequence: 2, atMs: 11 },
      { type: "completed", txId: "t1", success: true, durationMs: 5, sequence: 3, atMs: 12 },
      { type: "state_changed", txId: "t2", oldState: "none", newState: "preparing", sequence: 4, atMs: 13 },
    ];
    expect(await drain(a)).toEqual({ events: expected, error: null });
    expect(await drain(b)).toEqual({ events: expected, error: null });
  });

  it("a subscriber waiting for the next event wakes when it is emitted", async () => {
    const hub = new EventHub();
    const iterator = hub.subscribe(null)[Symbol.asyncIterator]();
    const next = iterator.next();
    let settled = false;
    void next.then(() => (settled = true));
    await new Promise((resolve) => setImmediate(resolve));
    expect(settled).toBe(false);
    changed(hub, "t1");
    expect((await next).value).toMatchObject({ txId: "t1", sequence: 1 });
  });

  it("a subscription for one transaction sees only that transaction's events", async () => {
    const hub = new EventHub();
    const one = hub.subscribe("t2");
    const all = hub.subscribe(null);
    changed(hub, "t1");
    changed(hub, "t2");
    hub.emit({ type: "completed", txId: "t1", success: false, durationMs: 1 });
    hub.emit({ type: "completed", txId: "t2", success: true, durationMs: 2 });
    hub.closeAll();
    const mine = await drain(one);
    expect(mine.events.map((e) => [e.type, e.txId, e.sequence])).toEqual([
      ["state_changed", "t2", 2],
      ["completed", "t2", 4],
    ]);
    expect((await drain(all)).events).toHaveLength(4);
  });

  it("a subscriber that falls `limit` events behind is disconnected: it gets what was queued, then SubscriberOverflow", async () => {
    const hub = new EventHub(3);
    const slow = hub.subscribe(null);
    const fast = hub.subscribe(null);
    const fastIterator = fast[Symbol.asyncIterator]();
    for (let i = 1; i <= 5; i++) {
      changed(hub, `t${i}`);
      expect((await fastIterator.next()).value).toMatchObject({ sequence: i });
    }
    // The slow one overflowed at the 4th event and was dropped from the hub at once.
    expect(hub.subscriberCount).toBe(1);
    const result = await drain(slow);
    expect(result.events.map((e) => e.sequence)).toEqual([1, 2, 3]);
    expect(result.error).toBeInstanceOf(SubscriberOverflow);
    expect((result.error as Error).message).toBe(
      "subscriber fell 3 events behind and was disconnected; subscribe again (events are not replayed)",
    );
  });

  it("events of other transactions do not count toward a filtered subscriber's limit", async () => {
    const hub = new EventHub(2);
    const one = hub.subscribe("mine");
    for (let i = 0; i < 10; i++) changed(hub, "other");
    changed(hub, "mine");
    hub.closeAll();
    const result = await drain(one);
    expect(result.error).toBeNull();
    expect(result.events.map((e) => e.txId)).toEqual(["mine"]);
  });

  it("closeAll ends every subscription after what is queued, wakes waiting readers, and later events go nowhere", async () => {
    const hub = new EventHub();
    const queued = hub.subscribe(null);
    const waiting = hub.subscribe(null)[Symbol.asyncIterator]();
    changed(hub, "t1");
    await waiting.next(); // t1
    const pending = waiting.next();
    hub.closeAll();
    expect(await pending).toEqual({ done: true, value: undefined });
    expect(hub.subscriberCount).toBe(0);
    changed(hub, "t2");
    expect((await drain(queued)).events.map((e) => e.txId)).toEqual(["t1"]);
  });

  it("a reader that stops iterating is unsubscribed", async () => {
    const hub = new EventHub();
    const subscription = hub.subscribe(null);
    changed(hub, "t1");
    changed(hub, "t2");
    expect(hub.subscriberCount).toBe(1);
    for await (const _ of subscription) break;
    expect(hub.subscriberCount).toBe(0);
  });

  it("close() on a subscription removes it; closing twice is harmless", () => {
    const hub = new EventHub();
    const a = hub.subscribe(null);
    hub.subscribe("x");
    expect(hub.subscriberCount).toBe(2);
    a.close();
    a.close();
    expect(hub.subscriberCount).toBe(1);
  });

  it("refuses subscribers beyond maxSubscribers, and admits again once one leaves", () => {
    const hub = new EventHub(10, 2);
    const first = hub.subscribe(null);
    hub.subscribe(null);
    expect(() => hub.subscribe(null)).toThrow("too many subscribers (2)");
    first.close();
    expect(() => hub.subscribe(null)).not.toThrow();
  });
});
