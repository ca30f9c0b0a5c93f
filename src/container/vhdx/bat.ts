/**
 * The VHDX block allocation table: 64-bit entries, a state in the low
 * three bits and a file offset in MiB in the top 44. Payload block entries
 * come in chunks of `chunkRatio`, each chunk followed by the entry of its
 * sector bitmap block (1 MiB, one bit per logical sector of the chunk, used
 * only by differencing disks).
 */
export const PayloadState = {
  notPresent: 0,
  undefined: 1,
  zero: 2,
  unmapped: 3,
  /** The unmapped state as spec draft 0.95 numbered it; qemu still reads it. */
  unmappedV095: 5,
  fullyPresent: 6,
  partiallyPresent: 7,
} as const;

export const BitmapState = { notPresent: 0, present: 6 } as const;

export const MiB = 1 << 20;
/** Sectors a sector bitmap block describes: 2^23 (its 1 MiB of bits). */
const SECTORS_PER_BITMAP_BLOCK = 1 << 23;

export interface BatEntry {
  state: number;
  /** Byte offset in the file (0 when the state has none). */
  offset: number;
}

export function decodeBatEntry(page: Buffer, at: number): BatEntry {
  const lo = page.readUInt32LE(at);
  const hi = page.readUInt32LE(at + 4);
  return { state: lo & 7, offset: (hi * 4096 + (lo >>> 20)) * MiB };
}

export function encodeBatEntry(entry: BatEntry, into: Buffer, at: number): void {
  const mib = entry.offset / MiB;
  into.writeUInt32LE((((mib % 4096) << 20) | entry.state) >>> 0, at);
  into.writeUInt32LE(Math.floor(mib / 4096), at + 4);
}

/** How payload blocks map to BAT entries for one disk. */
export class BatLayout {
  readonly chunkRatio: number;
  readonly payloadBlocks: number;
  readonly bitmapBlocks: number;
  /** Entries the BAT must hold. */
  readonly entries: number;

  constructor(
    readonly virtualSize: number,
    readonly blockSize: number,
    readonly logicalSectorSize: number,
    readonly hasParent: boolean,
  ) {
    this.chunkRatio = (SECTORS_PER_BITMAP_BLOCK * logicalSectorSize) / blockSize;
    this.payloadBlocks = Math.ceil(virtualSize / blockSize);
    this.bitmapBlocks = Math.ceil(this.payloadBlocks / this.chunkRatio);
    this.entries = hasParent
      ? this.bitmapBlocks * (this.chunkRatio + 1)
      : this.payloadBlocks + Math.floor(Math.max(0, this.payloadBlocks - 1) / this.chunkRatio);
  }

  payloadEntry(block: number): number {
    return block + Math.floor(block / this.chunkRatio);
  }

  bitmapEntry(chunk: number): number {
    return chunk * (this.chunkRatio + 1) + this.chunkRatio;
  }

  /** Is BAT entry `index` a sector bitmap block's (else a payload block's)? */
  isBitmapEntry(index: number): boolean {
    return index % (this.chunkRatio + 1) === this.chunkRatio;
  }

  /** Payload block of a payload entry. */
  blockOfEntry(index: number): number {
    return index - Math.floor(index / (this.chunkRatio + 1));
  }

  /** Bytes of sector bitmap per payload block. */
  get bitmapBytesPerBlock(): number {
    return this.blockSize / this.logicalSectorSize / 8;
  }
}
