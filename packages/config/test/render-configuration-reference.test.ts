import { configVariables, renderConfigurationReference } from "@mycelium/config";

describe("renderConfigurationReference", () => {
  const markdown = renderConfigurationReference();

  it("has one table row per variable, with its default and required services", () => {
    for (const spec of configVariables) {
      const rows = markdown.split("\n").filter((line) => line.startsWith(`| \`${spec.name}\` |`));
      expect(rows).toHaveLength(1);
      const cells = rows[0]!.split(/(?<!\\)\|/).map((cell) => cell.trim());
      // ["", name, type, default, required, description, ""]
      expect(cells).toHaveLength(7);
      if (spec.default !== undefined && spec.default !== "") expect(cells[3]).toBe(`\`${spec.default}\``);
      for (const service of spec.requiredFor) expect(cells[4]).toContain(service);
    }
  });

  it("marks secrets and conditional requirements", () => {
    expect(markdown).toMatch(/\| `MYCELIUM_PRIVATE_KEY` \|.*Secret: never printed\. \|/);
    expect(markdown).toMatch(/\| `MYCELIUM_MINER_CAPACITY` \|.*when `MYCELIUM_NODE_TYPE=miner`/);
  });
});
