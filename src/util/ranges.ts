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
