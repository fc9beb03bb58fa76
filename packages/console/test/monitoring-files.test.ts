/**
 * The Grafana dashboard and the alert rules the Helm chart ships name only metrics the services really
 * export (a renamed metric would otherwise leave a panel empty and an alert silent), and the dashboard is
 * valid JSON with unique panel ids.
 */
import * as fs from "node:fs";
import * as path from "node:path";

const repo = path.join(__dirname, "..", "..", "..");
const chart = path.join(repo, "deploy", "helm", "mycelium");

/** Every metric name registered in the sources (`name: "mycelium_…"`), with a histogram's series. */
function exportedMetrics(): Set<string> {
  const names = new Set<string>();
  const visit = (dir: string) => {
    for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
      if (entry.name === "node_modules" || entry.name === "dist" || entry.name === "test") continue;
      const full = path.join(dir, entry.name);
      if (entry.isDirectory()) visit(full);
      else if (entry.name.endsWith(".ts")) {
        const text = fs.readFileSync(full, "utf8");
        for (const match of text.matchAll(/name: "(mycelium_[a-z_]+)"/g)) {
          for (const suffix of ["", "_bucket", "_count", "_sum"]) names.add(match[1]! + suffix);
        }
      }
    }
  };
  for (const group of ["packages", "services"]) visit(path.join(repo, group));
  return names;
}

function metricsIn(text: string): string[] {
  return [...new Set([...text.matchAll(/\b(mycelium_[a-z_]+)/g)].map((m) => m[1]!))];
}

test("the Grafana dashboard parses, has unique panel ids, and queries exported metrics only", () => {
  const text = fs.readFileSync(path.join(chart, "files", "grafana", "mycelium.json"), "utf8");
  const dashboard = JSON.parse(text) as { uid: string; panels: Array<{ id: number; type: string; targets?: Array<{ expr: string }> }> };
  expect(dashboard.uid).toBe("mycelium-overview");
  const ids = dashboard.panels.map((p) => p.id);
  expect(new Set(ids).size).toBe(ids.length);
  expect(dashboard.panels.filter((p) => p.type !== "row").every((p) => (p.targets ?? []).length > 0)).toBe(true);
  const exported = exportedMetrics();
  const unknown = metricsIn(text).filter((name) => !exported.has(name));
  expect(unknown).toEqual([]);
});

test("the alert rules cover what operators must hear about, on exported metrics only", () => {
  const text = fs.readFileSync(path.join(chart, "files", "prometheus", "mycelium-rules.yaml"), "utf8");
  const alerts = [...text.matchAll(/- alert: (\w+)/g)].map((m) => m[1]);
  expect(alerts).toEqual(
    expect.arrayContaining(["MyceliumInDoubtTransactionsGrowing", "MyceliumReplicationLagHigh", "MyceliumNodeDown", "MyceliumCertificateExpiresSoon", "MyceliumConflictsJournaled"]),
  );
  const exported = exportedMetrics();
  expect(metricsIn(text).filter((name) => !exported.has(name))).toEqual([]);
});
