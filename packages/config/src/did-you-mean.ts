/** The known names `name` is plausibly a typo of ("A" or "A or B"), if any. */
export function didYouMean(name: string, known: readonly string[]): string | undefined {
  const upper = name.toUpperCase();
  const stem = upper.replace(/^MYCELIUM_/, "");
  let best: { candidate: string; distance: number } | undefined;
  for (const candidate of known) {
    const distance = editDistance(upper, candidate);
    if (!best || distance < best.distance) best = { candidate, distance };
  }
  // One slip of the finger (MYCELIUM_PROT) is the likeliest mistake of all.
  if (best && best.distance <= 1) return best.candidate;
  // A truncated or extended name (MYCELIUM_TLS_CERT for MYCELIUM_TLS_CERT_PATH) is far by edit distance
  // but obvious to a reader.
  const related = stem.length >= 3 ? known.filter((candidate) => candidate.startsWith(upper) || upper.startsWith(candidate)) : [];
  if (related.length > 0 && related.length <= 2) return related.join(" or ");
  // A few edits, scaled to the length, but not so many that MYCELIUM_FOO becomes MYCELIUM_HOST.
  const allowed = stem.length <= 4 ? 1 : stem.length <= 8 ? 2 : 3;
  return best && best.distance <= allowed ? best.candidate : undefined;
}

/** Levenshtein distance with adjacent transpositions counted as one edit (typing errors). */
export function editDistance(a: string, b: string): number {
  const d: number[][] = Array.from({ length: a.length + 1 }, (_, i) => Array.from({ length: b.length + 1 }, (_, j) => (i === 0 ? j : j === 0 ? i : 0)));
  const at = (i: number, j: number) => d[i]![j]!;
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      let value = Math.min(at(i - 1, j) + 1, at(i, j - 1) + 1, at(i - 1, j - 1) + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) value = Math.min(value, at(i - 2, j - 2) + 1);
      d[i]![j] = value;
    }
  }
  return at(a.length, b.length);
}
