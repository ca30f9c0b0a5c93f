/**
 * The bytes restore writes: the image, with patches laid over it (the GPT
 * moved to the target's end) and zeros past its end where a patch lies
 * beyond it. Patches count as data, so they are written even where the
 * image has a hole.
 */
import { type BlockSource, dataRangesOf } from "../io/block-source.js";
import { checkRange, targetBuffer } from "../io/bounds.js";
import type { Patch } from "./gpt-relocation.js";

export class PatchedSource implements BlockSource {
  readonly size: number;
  readonly name: string;
  readonly sectorSize: number;

  constructor(
    private readonly inner: BlockSource,
    private readonly patches: readonly Patch[],
  ) {
    this.size = Math.max(inner.size, ...patches.map((p) => p.offset + p.data.length));
    this.name = inner.name;
    this.sectorSize = inner.sectorSize;
  }

  async read(offset: number, length: number, into?: Buffer): Promise<Buffer> {
    checkRange(this.name, this.size, offset, length);
    const out = targetBuffer(length, into);
    const fromInner = Math.max(0, Math.min(length, this.inner.size - offset));
    if (fromInner > 0) await this.inner.read(offset, fromInner, out.subarray(0, fromInner));
    out.fill(0, fromInner);
    for (const p of this.patches) {
      const start = Math.max(offset, p.offset);
      const end = Math.min(offset + length, p.offset + p.data.length);
      if (start < end) p.data.copy(out, start - offset, start - p.offset, end - p.offset);
    }
    return out;
  }

  async dataRanges(offset: number, length: number): Promise<Array<[number, number]>> {
    const end = offset + length;
    const innerEnd = Math.min(end, this.inner.size);
    const ranges: Array<[number, number]> = [];
    if (offset < innerEnd) {
      ranges.push(...(await dataRangesOf(this.inner, offset, innerEnd - offset)));
    }
    for (const p of this.patches) {
      const start = Math.max(offset, p.offset);
      const stop = Math.min(end, p.offset + p.data.length);
      if (start < stop) ranges.push([start, stop - start]);
    }
    return mergeRanges(ranges);
  }

  /** The image belongs to its opener, which closes it. */
  async close(): Promise<void> {}
}

/** Sorted, overlapping or touching ranges joined. */
export function mergeRanges(ranges: Array<[number, number]>): Array<[number, number]> {
  const sorted = [...ranges].sort((a, b) => a[0] - b[0]);
  const out: Array<[number, number]> = [];
  for (const [start, length] of sorted) {
    const last = out.at(-1);
    if (last && start <= last[0] + last[1]) last[1] = Math.max(last[1], start + length - last[0]);
    else out.push([start, length]);
  }
  return out;
}
