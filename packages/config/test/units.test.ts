import { formatDurationMs, formatSizeBytes, parseDurationMs, parseSizeBytes } from "@mycelium/config";

describe("parseDurationMs", () => {
  it.each([
    ["30", 30_000],
    ["0", 0],
    ["1.5", 1_500],
    [".5", 500],
    ["500ms", 500],
    ["30s", 30_000],
    ["1.5s", 1_500],
    ["5m", 300_000],
    ["1h", 3_600_000],
    ["10 s", 10_000],
    ["2H", 7_200_000],
    ["1.1s", 1_100],
  ])("%j → %d ms", (text, ms) => expect(parseDurationMs(text)).toBe(ms));

  it.each(["", "s", "-1", "1d", "1.5ms", "1e3", "1h30m", "abc", "1,5s"])("rejects %j", (text) => {
    expect(() => parseDurationMs(text)).toThrow(/duration|whole number/);
  });
});

describe("parseSizeBytes", () => {
  it.each([
    ["4096", 4_096],
    ["1kb", 1_000],
    ["1KiB", 1_024],
    ["1GB", 1_000_000_000],
    ["1GiB", 1_073_741_824],
    ["512MiB", 536_870_912],
    ["1.5GB", 1_500_000_000],
    ["2 TiB", 2 * 2 ** 40],
    ["10M", 10_000_000],
  ])("%j → %d bytes", (text, bytes) => expect(parseSizeBytes(text)).toBe(bytes));

  it.each(["", "GB", "-1GB", "1XB", "1.5", "0.1KiB", "99999999999TB"])("rejects %j", (text) => {
    expect(() => parseSizeBytes(text)).toThrow(/size|whole number|too large/);
  });
});

describe("formatting parses back to the same value", () => {
  it.each([1, 500, 1_000, 1_500, 60_000, 90_000, 3_600_000, 86_400_000])("duration %d ms", (ms) => {
    expect(parseDurationMs(formatDurationMs(ms))).toBe(ms);
  });
  it.each([1, 1_000, 1_024, 1_000_000_000, 1_073_741_824, 1_500_000_000, 3 * 2 ** 40])("size %d bytes", (bytes) => {
    expect(parseSizeBytes(formatSizeBytes(bytes))).toBe(bytes);
  });
  it("prefers the largest exact unit", () => {
    expect(formatDurationMs(3_600_000)).toBe("1h");
    expect(formatDurationMs(90_000)).toBe("90s");
    expect(formatSizeBytes(1_000_000_000)).toBe("1GB");
    expect(formatSizeBytes(1_073_741_824)).toBe("1GiB");
    expect(formatSizeBytes(1_001)).toBe("1001B");
  });
});
