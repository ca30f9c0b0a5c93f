/**
 * The bitmap says which blocks the image holds, and the data section holds
 * them in block order, so block N's bytes are at the rank of N: the number of
 * used blocks before it. A 4 TB filesystem of 4 KiB blocks has a 128 MiB
 * bitmap, too much to hold, and the bitmap is already in the image: so it
 * stays there, read in pieces of PIECE_BLOCKS blocks (4 KiB of bits) through
 * an LRU cache, and one pass at open (which also checks its CRC, as
 * partclone does) keeps the rank at every piece boundary (8 bytes a piece:
 * 256 KiB for that 4 TB filesystem). A rank is then one cached piece and a
 * popcount of at most 4 KiB. Bitmaps up to the cache's 16 MiB (filesystems
 * up to 512 GiB of 4 KiB blocks) are read once, at open, and never again:
 * what matters most when the layer below is a stream that seeks by
 * decompressing.
 */
import { CorruptImageError } from "../../errors.js";
import type { BlockSource } from "../../io/block-source.js";
import { LruCache } from "../../util/lru.js";
import { partcloneCrc32 } from "./checksum.js";
import { hex, type BitmapMode } from "./header.js";

const PIECE_BLOCKS = 32768;
const PIECE_BYTES = PIECE_BLOCKS / 8;
/** Rank checkpoints kept at most (8 MiB); past 2^35 blocks they are a few pieces apart. */
const MAX_CHECKPOINTS = 1 << 20;
const CACHE_BYTES = 16 << 20;
/** Pieces read together when one is missing: a scan (dataRanges) reads 64 KiB at a time, a lone rank costs no more. */
const PIECES_PER_READ = 16;
/** Bitmap bytes read at a time by the pass at open. */
const SCAN_BYTES = 1 << 20;
const BYTE_MAP_MAGIC = "BiTmAgIc";

/** Set bits in a 32-bit word. */
function popcount32(v: number): number {
  v -= (v >>> 1) & 0x55555555;
  v = (v & 0x33333333) + ((v >>> 2) & 0x33333333);
  return Math.imul((v + (v >>> 4)) & 0x0f0f0f0f, 0x01010101) >>> 24;
}

/** A run of blocks all used or all free: [start, start + count). */
interface BlockRun {
  used: boolean;
  start: number;
  count: number;
}

/**
 * Bits [from, to) of a bit-packed piece that are set (bit i is byte i>>3,
 * bit i&7: partclone's little-endian longs), 32 at a time between the ends.
 */
function countBits(bits: Buffer, from: number, to: number): number {
  let n = 0;
  let i = from;
  for (; i < to && i & 31; i++) n += (bits[i >> 3] >> (i & 7)) & 1;
  for (; i + 32 <= to; i += 32) n += popcount32(bits.readUInt32LE(i >> 3));
  for (; i < to; i++) n += (bits[i >> 3] >> (i & 7)) & 1;
  return n;
}

/** How many bits from `from` (below `to`) equal `value`; whole words of them are skipped at once. */
function sameBits(bits: Buffer, from: number, to: number, value: number): number {
  const full = value ? 0xffffffff : 0;
  let i = from;
  while (i < to) {
    if ((i & 31) === 0 && i + 32 <= to && bits.readUInt32LE(i >> 3) === full) {
      i += 32;
      continue;
    }
    if (((bits[i >> 3] >> (i & 7)) & 1) !== value) break;
    i++;
  }
  return i - from;
}

export interface BitmapPlace {
  /** Where the bitmap starts in the image. */
  offset: number;
  mode: BitmapMode;
  totalBlocks: number;
}

export class BitmapIndex {
  private readonly cache: LruCache<number, Buffer>;

  private constructor(
    private readonly source: BlockSource,
    private readonly place: BitmapPlace,
    /** Used blocks before piece i * stride. */
    private readonly checkpoints: Float64Array,
    private readonly stride: number,
    readonly usedBlocks: number,
    cache: LruCache<number, Buffer>,
  ) {
    this.cache = cache;
  }

  /** Bytes the bitmap and what follows it (its CRC, or version 0001's magic) take in the image. */
  static sizeOnDisk(mode: BitmapMode, totalBlocks: number): { bytes: number; trailer: number } {
    if (mode === "none") return { bytes: 0, trailer: 0 };
    if (mode === "bit") return { bytes: Math.ceil(totalBlocks / 8), trailer: 4 };
    return { bytes: totalBlocks, trailer: BYTE_MAP_MAGIC.length };
  }

  /**
   * One pass over the bitmap: its CRC or magic checked, the used blocks
   * counted, a checkpoint every `stride` pieces, the first pieces cached.
   */
  static async build(source: BlockSource, place: BitmapPlace): Promise<BitmapIndex> {
    const { mode, totalBlocks } = place;
    if (mode === "none") return new BitmapIndex(source, place, new Float64Array(0), 1, totalBlocks, new LruCache(1));
    const pieces = Math.ceil(totalBlocks / PIECE_BLOCKS);
    const stride = Math.max(1, Math.ceil(pieces / MAX_CHECKPOINTS));
    const checkpoints = new Float64Array(Math.ceil(pieces / stride) + 1);
    const cache = new LruCache<number, Buffer>(Math.max(1, Math.min(pieces, CACHE_BYTES / PIECE_BYTES)));
    const { bytes, trailer } = BitmapIndex.sizeOnDisk(mode, totalBlocks);
    const end = place.offset + bytes + trailer;
    if (end > source.size) {
      throw new CorruptImageError(
        `partclone image: the bitmap of ${totalBlocks} blocks (${bytes} bytes and its ${mode === "bit" ? "CRC" : "magic"} at offset ${place.offset}) ` +
          `runs past the end of the image (${source.size} bytes): the image is truncated or its block count is wrong`,
      );
    }
    const blocksPerByte = mode === "bit" ? 8 : 1;
    const scanBlocks = (SCAN_BYTES * blocksPerByte) - ((SCAN_BYTES * blocksPerByte) % PIECE_BLOCKS);
    let crc: number | undefined;
    let used = 0;
    for (let first = 0; first < totalBlocks; first += scanBlocks) {
      const blocks = Math.min(scanBlocks, totalBlocks - first);
      const raw = await source.read(place.offset + first / blocksPerByte, Math.ceil(blocks / blocksPerByte));
      if (mode === "bit") crc = partcloneCrc32(raw, crc);
      for (const [piece, bits, count] of slicePieces(raw, mode, first, blocks)) {
        if (piece % stride === 0) checkpoints[piece / stride] = used;
        used += countBits(bits, 0, count);
        cache.set(piece, bits);
      }
    }
    checkpoints[checkpoints.length - 1] = used;
    const trailerAt = place.offset + bytes;
    const stored = await source.read(trailerAt, trailer);
    if (mode === "bit") {
      const computed = crc ?? partcloneCrc32(Buffer.alloc(0));
      if (stored.readUInt32LE(0) !== computed) {
        throw new CorruptImageError(
          `partclone image: the bitmap's CRC32 at offset ${trailerAt} is ${hex(stored.readUInt32LE(0), 8)}, but its ${bytes} bytes give ${hex(computed, 8)}`,
        );
      }
    } else if (stored.toString("latin1") !== BYTE_MAP_MAGIC) {
      throw new CorruptImageError(`partclone image: no "${BYTE_MAP_MAGIC}" after the bitmap, at offset ${trailerAt}: the bitmap is not ${bytes} bytes long`);
    }
    return new BitmapIndex(source, place, checkpoints, stride, used, cache);
  }

  /** Piece `p` as bits, from the cache or the image. */
  private async piece(p: number): Promise<Buffer> {
    const cached = this.cache.get(p);
    if (cached) return cached;
    const { mode, totalBlocks, offset } = this.place;
    const first = p * PIECE_BLOCKS;
    const blocks = Math.min(PIECES_PER_READ * PIECE_BLOCKS, totalBlocks - first);
    const raw = mode === "bit" ? await this.source.read(offset + first / 8, Math.ceil(blocks / 8)) : await this.source.read(offset + first, blocks);
    let wanted: Buffer | undefined;
    for (const [q, bits] of slicePieces(raw, mode, first, blocks)) {
      if (q === p) wanted = bits;
      else if (!this.cache.has(q)) this.cache.set(q, bits);
    }
    return this.cache.set(p, wanted as Buffer);
  }

  /** Used blocks before `block`. */
  async rank(block: number): Promise<number> {
    if (this.place.mode === "none") return block;
    const p = Math.floor(block / PIECE_BLOCKS);
    const c = Math.floor(p / this.stride);
    let rank = this.checkpoints[c];
    for (let q = c * this.stride; q < p; q++) rank += countBits(await this.piece(q), 0, PIECE_BLOCKS);
    const within = block - p * PIECE_BLOCKS;
    return within === 0 ? rank : rank + countBits(await this.piece(p), 0, within);
  }

  /** Blocks [start, end) as alternating runs of used and free blocks, made as they are consumed (a fragmented 4 TB bitmap has millions). */
  async *runs(start: number, end: number): AsyncGenerator<BlockRun> {
    if (start >= end) return;
    if (this.place.mode === "none") {
      yield { used: true, start, count: end - start };
      return;
    }
    let pending: BlockRun | undefined;
    let block = start;
    while (block < end) {
      const p = Math.floor(block / PIECE_BLOCKS);
      const bits = await this.piece(p);
      const base = p * PIECE_BLOCKS;
      const limit = Math.min(end, base + PIECE_BLOCKS) - base;
      let i = block - base;
      while (i < limit) {
        const value = (bits[i >> 3] >> (i & 7)) & 1;
        const count = sameBits(bits, i, limit, value);
        if (pending && pending.used === (value === 1)) pending.count += count;
        else {
          if (pending) yield pending;
          pending = { used: value === 1, start: base + i, count };
        }
        i += count;
      }
      block = base + limit;
    }
    if (pending) yield pending;
  }
}

/**
 * The pieces in `raw`, the bitmap of `blocks` blocks from block `first` (a
 * piece boundary): [piece, its bits, its block count]. Bit maps are sliced,
 * not copied: a piece keeps its read alive, and the read's other pieces go
 * into the cache with it.
 */
function* slicePieces(raw: Buffer, mode: BitmapMode, first: number, blocks: number): Generator<[number, Buffer, number]> {
  for (let start = 0; start < blocks; start += PIECE_BLOCKS) {
    const count = Math.min(PIECE_BLOCKS, blocks - start);
    const bits = mode === "bit" ? raw.subarray(start / 8, Math.ceil((start + count) / 8)) : packBytes(raw.subarray(start, start + count));
    yield [(first + start) / PIECE_BLOCKS, bits, count];
  }
}

/** Version 0001's byte map (1 = used; partclone treats any other value as free) as bits. */
function packBytes(bytes: Buffer): Buffer {
  const bits = Buffer.alloc(Math.ceil(bytes.length / 8));
  for (let i = 0; i < bytes.length; i++) if (bytes[i] === 1) bits[i >> 3] |= 1 << (i & 7);
  return bits;
}
