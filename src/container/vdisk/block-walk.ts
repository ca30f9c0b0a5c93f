/**
 * VHD, VHDX and VDI map the disk in fixed-size blocks, VMDK in grains: each
 * block is absent (zeros, or the parent's bytes), in the file, compressed,
 * or — in a differencing disk — partly here and partly in the parent, as a
 * per-sector bitmap says. blockExtents turns a format's answer for each
 * block into the extents MappedDisk reads.
 */
import type { BlockSource } from "../../io/block-source.js";
import type { DiskExtent } from "./mapped-disk.js";

export type BlockState =
  /** Nothing stored: zeros, or the parent's bytes. `blocks`: the same holds for this many blocks from here (a whole unallocated table). */
  | { kind: "zero" | "parent"; blocks?: number }
  /** The block's bytes start at `host` in `file`. */
  | { kind: "data"; file: BlockSource; host: number }
  /** The block is one compressed grain, decoded on demand. */
  | { kind: "decoded"; bytes: () => Promise<Buffer> }
  /**
   * Sector by sector: a set bit of `bitmap` (from bit `firstBit` on) means
   * the sector is at host + its offset in `file`, a clear one that it is the
   * parent's. `msbFirst`: VHD numbers bits from the top of each byte, VHDX
   * from the bottom.
   */
  | { kind: "sectors"; file: BlockSource; host: number; bitmap: Buffer; firstBit: number; sectorSize: number; msbFirst: boolean };

/** The state of block `index`: synchronous when its table is at hand, so a walk over a huge sparse disk does not wait once per block. */
export type BlockLookup = (index: number) => BlockState | Promise<BlockState>;

export async function* blockExtents(offset: number, length: number, blockSize: number, lookup: BlockLookup): AsyncGenerator<DiskExtent> {
  const end = offset + length;
  let pos = offset;
  while (pos < end) {
    const index = Math.floor(pos / blockSize);
    const found = lookup(index);
    const state = found instanceof Promise ? await found : found;
    const blockStart = index * blockSize;
    const blocks = state.kind === "zero" || state.kind === "parent" ? Math.max(1, state.blocks ?? 1) : 1;
    const stop = Math.min(end, blockStart + blocks * blockSize);
    switch (state.kind) {
      case "zero":
      case "parent":
        yield { kind: state.kind, guest: pos, length: stop - pos };
        break;
      case "data":
        yield { kind: "data", guest: pos, length: stop - pos, file: state.file, host: state.host + (pos - blockStart) };
        break;
      case "decoded":
        yield { kind: "decoded", guest: pos, length: stop - pos, within: pos - blockStart, bytes: state.bytes };
        break;
      case "sectors":
        yield* sectorExtents(pos, stop, blockStart, state);
        break;
    }
    pos = stop;
  }
}

/** Runs of sectors present here and absent (the parent's) within one block. */
function* sectorExtents(from: number, to: number, blockStart: number, state: BlockState & { kind: "sectors" }): Generator<DiskExtent> {
  const { sectorSize, bitmap, firstBit, msbFirst } = state;
  const present = (sector: number): boolean => {
    const bit = firstBit + sector;
    const byte = bitmap[bit >> 3];
    return ((msbFirst ? byte >> (7 - (bit & 7)) : byte >> (bit & 7)) & 1) === 1;
  };
  let pos = from;
  while (pos < to) {
    const sector = Math.floor((pos - blockStart) / sectorSize);
    const here = present(sector);
    let next = sector + 1;
    while (blockStart + next * sectorSize < to && present(next) === here) next++;
    const stop = Math.min(to, blockStart + next * sectorSize);
    if (here) yield { kind: "data", guest: pos, length: stop - pos, file: state.file, host: state.host + (pos - blockStart) };
    else yield { kind: "parent", guest: pos, length: stop - pos };
    pos = stop;
  }
}
