/**
 * Reads part of a zisofs-compressed file: only the block pointers and the
 * blocks the part covers are read and inflated (a 4 KiB read of a 4 GiB file
 * inflates one block). Every pointer is checked before it is followed and
 * every block is inflated into at most its own size, so a crafted file can
 * neither point outside its data nor inflate without bound.
 */
import { decompressBlock as inflateZlib } from "../../container/codec/zlib-block.js";
import { CorruptImageError, PlatterError, UnsupportedError } from "../../errors.js";
import { LruCache } from "../../util/lru.js";
import {
  checkZisofsHeader,
  checkZisofsParams,
  decodeZisofsPointers,
  maxCompressedBlock,
  zisofsHeaderSize,
  zisofsPointerSize,
  type ZisofsParams,
} from "./zisofs.js";

/** Inflated blocks kept (at most 1 MiB each): sequential reads smaller than a block inflate it once. */
const BLOCK_CACHE = 8;

/** The stored (compressed) bytes of one file. */
export interface StoredFile {
  /** Unique per stored data (its first block): the cache key. */
  id: number;
  size: number;
  read(offset: number, length: number): Promise<Buffer>;
}

export class ZisofsReader {
  private readonly blocks = new LruCache<string, Buffer>(BLOCK_CACHE);

  /** Fill `out` with the uncompressed bytes from `offset` (the caller checked they lie inside p.size). */
  async read(stored: StoredFile, p: ZisofsParams, offset: number, out: Buffer, where: string): Promise<void> {
    checkZisofsParams(p, where);
    if (p.algorithm !== "pz" && p.algorithm !== "PZ") {
      throw new UnsupportedError(`${where}: compressed with zisofs algorithm '${p.algorithm}'; platter reads zlib ('pz', 'PZ')`);
    }
    if (out.length === 0) return;
    const blockSize = 2 ** p.blockLog2;
    const pointerSize = zisofsPointerSize(p.version);
    const tableEnd = p.headerSize + (Math.ceil(p.size / blockSize) + 1) * pointerSize;
    if (tableEnd > stored.size) {
      throw new CorruptImageError(`${where}: zisofs header and block pointers (${tableEnd} bytes) run past the stored data (${stored.size} bytes)`);
    }
    checkZisofsHeader(await stored.read(0, zisofsHeaderSize(p.version)), p, where);

    const first = Math.floor(offset / blockSize);
    const last = Math.floor((offset + out.length - 1) / blockSize);
    const pointers = decodeZisofsPointers(await stored.read(p.headerSize + first * pointerSize, (last - first + 2) * pointerSize), p.version, where);
    for (let b = first; b <= last; b++) {
      const [start, end] = [pointers[b - first], pointers[b - first + 1]];
      if (start < tableEnd || end < start || end > stored.size || end - start > maxCompressedBlock(blockSize)) {
        throw new CorruptImageError(
          `${where}: zisofs block ${b} lies at bytes ${start}..${end} of ${stored.size} (data starts at ${tableEnd}, a block takes at most ${maxCompressedBlock(blockSize)})`,
        );
      }
    }
    const key = (b: number) => `${stored.id}:${b}`;
    let span: Buffer | undefined;
    for (let b = first; b <= last; b++) {
      let block = this.blocks.get(key(b));
      if (!block) {
        // One read for every compressed block of the part: each was bounded above.
        span ??= await stored.read(pointers[0], pointers[last - first + 1] - pointers[0]);
        const compressed = span.subarray(pointers[b - first] - pointers[0], pointers[b - first + 1] - pointers[0]);
        block = this.blocks.set(key(b), await inflate(compressed, Math.min(blockSize, p.size - b * blockSize), `${where}: zisofs block ${b}`));
      }
      const blockStart = b * blockSize;
      const from = Math.max(offset, blockStart);
      const to = Math.min(offset + out.length, blockStart + block.length);
      block.copy(out, from - offset, from - blockStart, to - blockStart);
    }
  }
}

/** One block's bytes: exactly `size` of them, or the block is corrupt. An empty block is zeros. */
async function inflate(compressed: Buffer, size: number, where: string): Promise<Buffer> {
  if (compressed.length === 0) return Buffer.alloc(size);
  let block: Buffer;
  try {
    block = await inflateZlib(compressed, size);
  } catch (err) {
    if (err instanceof PlatterError) throw new CorruptImageError(`${where}: ${err.message}`, { cause: err });
    throw err;
  }
  if (block.length !== size) throw new CorruptImageError(`${where}: inflates to ${block.length} bytes, not ${size}`);
  return block;
}
