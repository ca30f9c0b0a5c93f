import { CorruptImageError } from "../../errors.js";
import type { BlockSource } from "../../io/block-source.js";
import type { BlockDecompressor } from "../../container/codec/types.js";
import { LruCache } from "../../util/lru.js";
import type { ByteStream } from "./directory.js";

/**
 * Metadata (inodes, directories, fragment and id tables) lives in blocks of
 * at most 8 KiB, each after a 16-bit header: the high bit set means stored
 * uncompressed, the low 15 bits are the size on disk.
 */
export const METADATA_SIZE = 8192;
const HEADER_SIZE = 2;

export function decodeMetadataHeader(word: number): { compressed: boolean; size: number } {
  return { compressed: (word & 0x8000) === 0, size: word & 0x7fff };
}

/** A place in a metadata table: the byte position of a block's header, and an offset into its decompressed bytes. */
export interface MetaCursor {
  block: number;
  offset: number;
}

interface MetaBlock {
  data: Buffer;
  /** Position of the following block's header. */
  next: number;
}

/** Reads (and caches) metadata blocks; a run of bytes may continue into the following blocks. */
export class MetadataReader {
  /** 2 MiB of decompressed blocks. */
  private readonly cache = new LruCache<number, MetaBlock>(256);

  constructor(
    private readonly source: BlockSource,
    private readonly decompress: BlockDecompressor,
    /** The largest window a compressed block may declare (the filesystem's block size, as the kernel allows). */
    private readonly maxWindow: number,
  ) {}

  /** The block whose header is at `position`; blocks must end before `limit` (the end of their table). */
  async block(position: number, limit: number): Promise<MetaBlock> {
    const cached = this.cache.get(position);
    if (cached) return cached;
    if (position + HEADER_SIZE > limit) {
      throw new CorruptImageError(`squashfs: metadata block at ${position} is past the end of its table (${limit})`);
    }
    const { compressed, size } = decodeMetadataHeader((await this.source.read(position, HEADER_SIZE)).readUInt16LE(0));
    if (size === 0 || size > METADATA_SIZE || position + HEADER_SIZE + size > limit) {
      throw new CorruptImageError(`squashfs: metadata block at ${position} has a bad size ${size}`);
    }
    const raw = await this.source.read(position + HEADER_SIZE, size);
    const data = compressed ? await this.decompress(raw, METADATA_SIZE, this.maxWindow) : raw;
    return this.cache.set(position, { data, next: position + HEADER_SIZE + size });
  }

  /** `length` bytes from `at`, crossing into following blocks as needed; also where the bytes end. */
  async read(at: MetaCursor, length: number, limit: number): Promise<MetaRun> {
    const run = new Run(at, length);
    for (;;) {
      const block = this.cache.get(run.position) ?? (await this.block(run.position, limit));
      const done = run.take(block);
      if (done) return done;
    }
  }

  /**
   * read(), without waiting, when every block it needs is already cached;
   * else undefined. Listing a directory decodes thousands of inodes from a
   * few blocks, and an await per inode shows in profiles.
   */
  peek(at: MetaCursor, length: number): MetaRun | undefined {
    const run = new Run(at, length);
    for (;;) {
      const block = this.cache.get(run.position);
      if (!block) return undefined;
      const done = run.take(block);
      if (done) return done;
    }
  }
}

/**
 * `length` bytes from `start`, handed out piece by piece (a directory
 * listing): only the metadata block being read is held, not the whole run.
 */
export class MetaStream implements ByteStream {
  private data: Buffer = Buffer.alloc(0);
  private at = 0;
  private position: number;
  private first = true;

  constructor(
    private readonly reader: MetadataReader,
    start: MetaCursor,
    public remaining: number,
    private readonly limit: number,
  ) {
    this.position = start.block;
    this.at = start.offset;
  }

  /** The next `length` bytes (at most `remaining`); a view into the current block when they lie inside it. */
  async take(length: number): Promise<Buffer> {
    if (length > this.remaining) throw new CorruptImageError(`squashfs: a metadata run ends ${length - this.remaining} bytes early`);
    this.remaining -= length;
    if (!this.first && this.at + length <= this.data.length) {
      this.at += length;
      return this.data.subarray(this.at - length, this.at);
    }
    const parts: Buffer[] = [];
    let needed = length;
    for (;;) {
      if (this.first || this.at === this.data.length) await this.nextBlock();
      const n = Math.min(needed, this.data.length - this.at);
      parts.push(this.data.subarray(this.at, this.at + n));
      this.at += n;
      needed -= n;
      if (needed === 0) return parts.length === 1 ? (parts[0] as Buffer) : Buffer.concat(parts, length);
    }
  }

  private async nextBlock(): Promise<void> {
    const block = await this.reader.block(this.position, this.limit);
    if (this.first) {
      this.first = false;
      if (this.at > block.data.length) {
        throw new CorruptImageError(`squashfs: offset ${this.at} is past the end of the metadata block at ${this.position}`);
      }
    } else {
      this.at = 0;
    }
    this.data = block.data;
    this.position = block.next;
  }
}

export interface MetaRun {
  bytes: Buffer;
  /** Where the bytes end: the start of whatever follows them. */
  next: MetaCursor;
}

/** A run of bytes being gathered from consecutive metadata blocks. */
class Run {
  private readonly parts: Buffer[] = [];
  position: number;
  private offset: number;
  private remaining: number;

  constructor(
    at: MetaCursor,
    private readonly length: number,
  ) {
    this.position = at.block;
    this.offset = at.offset;
    this.remaining = length;
  }

  /** Take what the run needs from `block` (the one at `position`); the finished run, or undefined to go on to the next block. */
  take(block: MetaBlock): MetaRun | undefined {
    if (this.offset > block.data.length) {
      throw new CorruptImageError(`squashfs: offset ${this.offset} is past the end of the metadata block at ${this.position}`);
    }
    // A run that ends exactly at a block's end leaves the cursor there; the
    // next read moves on to the following block.
    const take = Math.min(this.remaining, block.data.length - this.offset);
    if (take > 0) this.parts.push(block.data.subarray(this.offset, this.offset + take));
    this.remaining -= take;
    this.offset += take;
    if (this.remaining === 0) {
      const bytes = this.parts.length === 1 ? (this.parts[0] as Buffer) : Buffer.concat(this.parts, this.length);
      return { bytes, next: { block: this.position, offset: this.offset } };
    }
    this.position = block.next;
    this.offset = 0;
    return undefined;
  }
}
