/**
 * Mapping real names to a restricted alphabet (ISO 9660 d-characters, Joliet
 * UCS-2) can make two names equal. Resolve that deterministically: every name
 * whose mapping is unique keeps it; of several equal mappings the first (in
 * the caller's order) keeps it and the others get the first numbered variant
 * that no other name wants.
 */
export function assignUnique(
  wanted: readonly string[],
  /** The n-th alternative (n = 1, 2, ...) for the name at `index`; must differ for different n. */
  variant: (index: number, n: number) => string,
  /** Collision key: two names clash when their keys are equal (defaults to the name itself). */
  key: (name: string) => string = (s) => s,
): string[] {
  const reserved = new Set(wanted.map(key));
  const taken = new Set<string>();
  // Where to resume numbering for each clashing name: k clashes cost O(k), not O(k^2).
  const resume = new Map<string, number>();
  return wanted.map((name, index) => {
    const k = key(name);
    if (!taken.has(k)) {
      taken.add(k);
      return name;
    }
    for (let n = resume.get(k) ?? 1; n < 10_000_000; n++) {
      const candidate = variant(index, n);
      const ck = key(candidate);
      if (!reserved.has(ck) && !taken.has(ck)) {
        taken.add(ck);
        resume.set(k, n + 1);
        return candidate;
      }
    }
    throw new RangeError(`no unique name left for '${name}'`);
  });
}
