/**
 * The data section: the used blocks in block order, each strip of
 * blocks_per_checksum blocks followed by its checksum (the last strip may be
 * shorter, and has one too), or the blocks alone when the image has no
 * checksums. No byte is used before its strip's checksum is checked. A strip
 * of up to MAX_HELD_STRIP bytes (partclone's default is 1 MiB, its buffer) is
 * read whole, checked and kept in a small LRU cache: filesystem readers come
 * back to the same metadata blocks often; a read that wants the whole strip
 * (convert, hash) gets it checked in its own buffer instead. A longer one (partclone -k with a
 * large count: the whole image can be one strip) is checked by one streaming
 * pass the first time it is touched, remembered as good, and then read in
 * place: memory stays bounded whatever -k was.
 */
import { CorruptImageError } from "../../errors.js";
import type { BlockSource } from "../../io/block-source.js";
import { LruCache } from "../../util/lru.js";
import { CRC32_SEED, partcloneCrc32, partcloneCrc32V1 } from "./checksum.js";
import { hex, type PartcloneHeader } from "./header.js";

const MAX_HELD_STRIP = 4 << 20;
const CACHE_BYTES = 16 << 20;
/** Bytes read at a time when a long strip is checked by streaming. */
const STREAM_BYTES = 1 << 20;

/** Bytes the data section of `header` takes in the image. */
export function dataSectionSize(header: PartcloneHeader): number {
  const checksums = header.checksumSize ? Math.ceil(header.usedBlocks / header.blocksPerChecksum) : 0;
  return header.usedBlocks * header.blockSize + checksums * header.checksumSize;
}

/** Where strip `s` lies in the image. */
interface StripPlace {
  /** First used block in it, and how many. */
  first: number;
  count: number;
  /** Its first data byte; its checksum follows the data. */
  dataAt: number;
  dataBytes: number;
}

/** What once() needs of a Map or an LruCache. */
interface PromiseCache<V> {
  get(key: number): Promise<V> | undefined;
  set(key: number, value: Promise<V>): unknown;
  delete(key: number): unknown;
}

export class DataSection {
  /** Blocks of a full strip: never more than the image holds, whatever blocks_per_checksum says. */
  private readonly stripBlocks: number;
  private readonly stripBytes: number;
  private readonly held: LruCache<number, Promise<Buffer>> | undefined;
  /** Long strips being checked, and a bit per long strip found good (a bit, not an entry: a 4 TB image may have a million). */
  private readonly checking = new Map<number, Promise<void>>();
  private readonly checked: Uint8Array;
  private scratch: Buffer | undefined;

  constructor(
    private readonly source: BlockSource,
    private readonly header: PartcloneHeader,
    /** Where the section starts in the image. */
    private readonly offset: number,
  ) {
    this.stripBlocks = Math.max(1, Math.min(header.blocksPerChecksum, header.usedBlocks));
    this.stripBytes = this.stripBlocks * header.blockSize;
    const held = header.checksumSize > 0 && this.stripBytes <= MAX_HELD_STRIP;
    if (held) this.held = new LruCache(Math.max(2, Math.floor(CACHE_BYTES / this.stripBytes)));
    // The caller has checked the section against the image's size: strips are at most its size / MAX_HELD_STRIP.
    this.checked = new Uint8Array(held || !header.checksumSize ? 0 : Math.ceil(Math.ceil(header.usedBlocks / this.stripBlocks) / 8));
  }

  /**
   * `length` bytes of the used blocks' bytes from byte `skip` of used block
   * `used` on, into out[at...]. They lie in one run of consecutive blocks
   * starting at filesystem block `block`, so errors can name the block.
   */
  async read(used: number, skip: number, length: number, out: Buffer, at: number, block: number): Promise<void> {
    const { blockSize } = this.header;
    let pos = used * blockSize + skip;
    if (!this.header.checksumSize) {
      await this.source.read(this.offset + pos, length, out.subarray(at, at + length));
      return;
    }
    const end = pos + length;
    while (pos < end) {
      const s = Math.floor(pos / this.stripBytes);
      const within = pos - s * this.stripBytes;
      const place = this.place(s);
      const n = Math.min(end - pos, place.dataBytes - within);
      const reading = block + Math.floor(pos / blockSize) - used;
      const target = out.subarray(at, at + n);
      if (this.held && n === place.dataBytes && !this.held.has(s)) {
        // A whole strip nobody holds (a sequential read: convert, hash): checked where it lands, neither copied nor kept.
        await this.readWholeInto(place, reading, target);
      } else if (this.held) {
        (await this.once(this.held, s, () => this.readHeld(place, reading))).copy(target, 0, within, within + n);
      } else {
        if (!((this.checked[s >> 3] >> (s & 7)) & 1)) {
          await this.once(this.checking, s, async () => {
            await this.checkStreaming(place, reading);
            this.checked[s >> 3] |= 1 << (s & 7);
            this.checking.delete(s);
          });
        }
        await this.source.read(place.dataAt + within, n, target);
      }
      at += n;
      pos += n;
    }
  }

  /** The promise `cache` keeps for strip `s`, made by `make` the first time; a failure is not kept, so it is reported again. */
  private once<V>(cache: PromiseCache<V>, s: number, make: () => Promise<V>): Promise<V> {
    let pending = cache.get(s);
    if (!pending) {
      const made = make();
      made.catch(() => cache.get(s) === made && cache.delete(s));
      cache.set(s, made);
      pending = made;
    }
    return pending;
  }

  private place(s: number): StripPlace {
    const { blockSize, checksumSize, usedBlocks } = this.header;
    const first = s * this.stripBlocks;
    const count = Math.min(this.stripBlocks, usedBlocks - first);
    return { first, count, dataAt: this.offset + first * blockSize + s * checksumSize, dataBytes: count * blockSize };
  }

  /** A chained checksum goes on from the one stored before the strip; a reseeded one starts afresh. */
  private chained(place: StripPlace): boolean {
    return !this.header.reseedChecksum && place.first > 0;
  }

  /** The strip read whole (with the checksum before it when chained, and its own) and checked. */
  private async readHeld(place: StripPlace, block: number): Promise<Buffer> {
    const prefix = this.chained(place) ? this.header.checksumSize : 0;
    const buf = await this.source.read(place.dataAt - prefix, prefix + place.dataBytes + this.header.checksumSize);
    const data = buf.subarray(prefix, prefix + place.dataBytes);
    const seed = prefix ? buf.readUInt32LE(0) : CRC32_SEED;
    this.compare(place, block, this.checksum(data, seed), buf.readUInt32LE(prefix + place.dataBytes));
    return data;
  }

  /** The strip's data read into `target` and checked there; the checksums around it read apart. */
  private async readWholeInto(place: StripPlace, block: number, target: Buffer): Promise<void> {
    const { checksumSize } = this.header;
    const [, seed, stored] = await Promise.all([
      this.source.read(place.dataAt, place.dataBytes, target),
      this.chained(place) ? this.source.read(place.dataAt - checksumSize, checksumSize).then((b) => b.readUInt32LE(0)) : CRC32_SEED,
      this.source.read(place.dataAt + place.dataBytes, checksumSize).then((b) => b.readUInt32LE(0)),
    ]);
    this.compare(place, block, this.checksum(target, seed), stored);
  }

  /** The strip's checksum computed over reads of STREAM_BYTES (whole blocks), none of it held. */
  private async checkStreaming(place: StripPlace, block: number): Promise<void> {
    const { blockSize, checksumSize } = this.header;
    let crc = this.chained(place) ? (await this.source.read(place.dataAt - checksumSize, checksumSize)).readUInt32LE(0) : CRC32_SEED;
    const step = Math.max(1, Math.floor(STREAM_BYTES / blockSize)) * blockSize;
    const chunk = Buffer.alloc(Math.min(step, place.dataBytes));
    for (let pos = 0; pos < place.dataBytes; pos += step) {
      const n = Math.min(step, place.dataBytes - pos);
      crc = this.checksum(await this.source.read(place.dataAt + pos, n, chunk.subarray(0, n)), crc);
    }
    this.compare(place, block, crc, (await this.source.read(place.dataAt + place.dataBytes, checksumSize)).readUInt32LE(0));
  }

  private compare(place: StripPlace, block: number, computed: number, stored: number): void {
    if (stored === computed) return;
    const { first, count, dataAt, dataBytes } = place;
    throw new CorruptImageError(
      `partclone image: checksum error reading block ${block}: the strip of used blocks ${first}-${first + count - 1} at offset ${dataAt} ` +
        `gives CRC32 ${hex(computed, 8)}, the image has ${hex(stored, 8)} at offset ${dataAt + dataBytes}`,
    );
  }

  private checksum(data: Buffer, seed: number): number {
    if (this.header.checksum === "crc32") return partcloneCrc32(data, seed);
    const { blockSize } = this.header;
    this.scratch ??= Buffer.alloc(blockSize);
    let crc = seed;
    for (let at = 0; at < data.length; at += blockSize) crc = partcloneCrc32V1(data.subarray(at, at + blockSize), crc, this.scratch);
    return crc;
  }
}
