/** [offset, length] ranges sorted and merged where they overlap or touch: the same bytes, listed once, in order. */
export function mergeRanges(ranges: ReadonlyArray<readonly [number, number]>): Array<[number, number]> {
  const merged: Array<[number, number]> = [];
  for (const [start, length] of [...ranges].sort((a, b) => a[0] - b[0])) {
    const last = merged.at(-1);
    if (last && start <= last[0] + last[1]) last[1] = Math.max(last[1], start + length - last[0]);
    else merged.push([start, length]);
  }
  return merged;
}

/** Append [start, start+length) to ranges built in order, joined to the last one where they touch; empty ones are dropped. */
export function appendRange(ranges: Array<[number, number]>, start: number, length: number): void {
  const last = ranges.at(-1);
  if (last && last[0] + last[1] === start) last[1] += length;
  else if (length > 0) ranges.push([start, length]);
}

/**
 * `ranges` (in order, inside [lo, hi)) widened outward to multiples of
 * `align`, clipped to [lo, hi), joined where they then touch: ranges that
 * hold data may always be widened, and direct writes need aligned offsets
 * (a VHD's sector bitmaps give 512-byte ranges; a 4Kn disk refuses them,
 * and unaligned ones made a convert eight times slower).
 */
export function alignRanges(ranges: ReadonlyArray<readonly [number, number]>, align: number, lo: number, hi: number): Array<[number, number]> {
  const out: Array<[number, number]> = [];
  for (const [start, length] of ranges) {
    const from = Math.max(lo, Math.floor(start / align) * align);
    const to = Math.min(hi, Math.ceil((start + length) / align) * align);
    const last = out.at(-1);
    if (last && from <= last[0] + last[1]) last[1] = Math.max(last[1], to - last[0]);
    else out.push([from, to - from]);
  }
  return out;
}
