// Run by sqlite-control-store.test.ts in separate processes: increments a shared counter with
// compare-and-set, retrying lost rounds, then reports how many rounds it lost.
import { openControlStore } from "@mycelium/topology";

async function main(): Promise<void> {
  const [url, countText] = process.argv.slice(2);
  const store = await openControlStore(url!);
  let lost = 0;
  for (let done = 0; done < Number(countText); ) {
    const current = await store.get("counter");
    const next = String(Number(current?.value ?? "0") + 1);
    const result = await store.commit([{ kind: "put", key: "counter", value: next, expectedVersion: current?.version ?? 0 }]);
    if (result.ok) done += 1;
    else lost += 1;
  }
  await store.close();
  process.stdout.write(`DONE lost=${lost}\n`);
}

main().catch((error) => {
  process.stderr.write(`${(error as Error).stack ?? String(error)}\n`);
  process.exit(1);
});
