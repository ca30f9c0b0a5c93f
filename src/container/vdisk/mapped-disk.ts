/**
 * What VHD, VHDX, VMDK and VDI have in common once their tables are read: a
 * virtual disk whose bytes each come from somewhere in a file, from a
 * decoded (compressed) grain, from the parent image, or are zeros. A format
 * says where (extents()); reading, merging neighbouring reads (and host
 * bytes that follow on in a file into one vectored read) and telling
 * data from holes (dataRanges) are done once, here.
 */
import { type BlockSource, dataRangesOf } from "../../io/block-source.js";
import { checkRange, targetBuffer } from "../../io/bounds.js";
import { appendRange } from "../../util/ranges.js";
import { HostReads } from "./host-reads.js";

/** Where a run of guest bytes comes from. */
export type DiskExtent =
  | { kind: "data"; guest: number; length: number; file: BlockSource; host: number }
  | { kind: "zero" | "parent"; guest: number; length: number }
  /** Bytes `within` a grain that must be decoded first (a compressed VMDK grain). */
  | { kind: "decoded"; guest: number; length: number; within: number; bytes: () => Promise<Buffer> };

export abstract class MappedDisk implements BlockSource {
  constructor(
    readonly name: string,
    readonly size: number,
    readonly sectorSize: number,
    /** The image a differencing disk reads its unwritten sectors from; none reads them as zeros. */
    protected readonly parent: BlockSource | undefined,
  ) {}

  /** The extents of [offset, offset+length) in order, covering it exactly; every table entry checked on the way. */
  protected abstract extents(offset: number, length: number): AsyncIterable<DiskExtent>;

  async read(offset: number, length: number, into?: Buffer): Promise<Buffer> {
    checkRange(this.name, this.size, offset, length);
    const out = targetBuffer(length, into);
    const reads: Array<Promise<unknown>> = [];
    const hostReads = new HostReads();
    for await (const extent of mergeExtents(this.extents(offset, length))) {
      const dest = out.subarray(extent.guest - offset, extent.guest - offset + extent.length);
      switch (extent.kind) {
        case "zero":
          dest.fill(0);
          break;
        case "data":
          hostReads.add(extent.file, extent.host, dest);
          break;
        case "parent":
          reads.push(this.readParent(extent.guest, dest));
          break;
        case "decoded":
          reads.push(extent.bytes().then((bytes) => bytes.copy(dest, 0, extent.within, extent.within + extent.length)));
          break;
      }
    }
    reads.push(hostReads.done());
    await Promise.all(reads);
    return out;
  }

  /** Guest ranges that may hold data: this image's own blocks, and the parent's data ranges where it shows through. */
  async dataRanges(offset: number, length: number): Promise<Array<[number, number]>> {
    checkRange(this.name, this.size, offset, length);
    const ranges: Array<[number, number]> = [];
    const add = (start: number, len: number) => appendRange(ranges, start, len);
    for await (const extent of mergeExtents(this.extents(offset, length))) {
      if (extent.kind === "decoded") add(extent.guest, extent.length);
      else if (extent.kind === "data") {
        // Holes of the file under a block (a static VDI, a fixed VHDX, a flat extent) are zeros too.
        const hostRanges = await dataRangesOf(extent.file, extent.host, extent.length);
        for (const [start, len] of hostRanges) add(extent.guest + (start - extent.host), len);
      } else if (extent.kind === "parent" && this.parent) {
        const inside = Math.max(0, Math.min(extent.length, this.parent.size - extent.guest));
        if (inside === 0) continue;
        const parentRanges = await dataRangesOf(this.parent, extent.guest, inside);
        for (const [start, len] of parentRanges) add(start, len);
      }
    }
    return ranges;
  }

  async close(): Promise<void> {
    await this.parent?.close();
  }

  /** A parent smaller than its child (VMDK allows it) reads as zeros past its end. */
  private async readParent(guest: number, dest: Buffer): Promise<void> {
    const inside = this.parent ? Math.max(0, Math.min(dest.length, this.parent.size - guest)) : 0;
    if (inside > 0) await (this.parent as BlockSource).read(guest, inside, dest.subarray(0, inside));
    dest.fill(0, inside);
  }
}

/** Neighbouring extents joined: zeros with zeros, parent with parent, file bytes that follow on in the same file. */
export async function* mergeExtents(extents: AsyncIterable<DiskExtent>): AsyncGenerator<DiskExtent> {
  let pending: DiskExtent | undefined;
  for await (const next of extents) {
    if (next.length === 0) continue;
    if (pending && pending.guest + pending.length === next.guest && joinable(pending, next)) {
      pending = { ...pending, length: pending.length + next.length };
      continue;
    }
    if (pending) yield pending;
    pending = next;
  }
  if (pending) yield pending;
}

function joinable(a: DiskExtent, b: DiskExtent): boolean {
  if (a.kind === "zero" || a.kind === "parent") return a.kind === b.kind;
  if (a.kind === "data" && b.kind === "data") return a.file === b.file && a.host + a.length === b.host;
  return false;
}
