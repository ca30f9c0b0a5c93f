/**
 * Reads of a compressed image that decodes in independent units (gzip spans
 * and members, bzip2 blocks and streams): each read decodes the units it
 * touches, all at once (the decoders run off the main thread): those it
 * covers whole straight into its buffer where the format can, the others
 * into an LRU cache of the last ones; when reads go forward in pieces
 * smaller than readAhead units it decodes the next units ahead, so a
 * sequential reader keeps every core busy.
 *
 * Memory: the cache holds at most `cacheBytes` of decoded units (sized from
 * the largest unit, two at least), read-ahead included, plus the units of
 * reads in flight. Units decode into memory from a pool, given back once a
 * unit has left the cache and no read still copies out of it: fresh memory
 * costs a page fault per 4 KiB here (a 64 MiB .bz2 read back into raw took
 * 26,000 more faults than pbzip2 -d, a quarter more CPU).
 */
import { checkRange, targetBuffer } from "../io/bounds.js";
import { BufferPool } from "../util/buffer-pool.js";
import { LruCache } from "../util/lru.js";

export interface DecodedUnits {
  readonly count: number;
  /** Decoded offset where unit i starts; start(count) is the image size. */
  start(i: number): number;
  /** The unit containing decoded offset `offset` (0 <= offset < size). */
  find(offset: number): number;
  /**
   * Exactly start(i+1) - start(i) bytes, or a CorruptImageError. Decoded in
   * `memory` (at least that long) where the format can: the result is then a
   * view of it; the reader owns `memory` either way.
   */
  decode(i: number, memory: Buffer): Promise<Buffer>;
  /**
   * Decode unit i straight into `out` (exactly its length), for a read that
   * covers it whole; undefined where this unit cannot be (decode() then).
   */
  decodeInto?(i: number, out: Buffer): Promise<void> | undefined;
  /** Unit i is known to decode to zeros (the index saw it): read without decoding, and a hole for dataRanges. */
  isZeros?(i: number): boolean;
}

export interface UnitReaderOptions {
  /** Decoded bytes the cache may hold. */
  cacheBytes: number;
  /** Size of the largest unit. */
  largestUnit: number;
  /** Units decoded ahead of a sequential reader (the number of cores is a good choice). */
  readAhead: number;
}

/** A unit in the cache: its decoding, the pool memory it decodes into, and the reads still to copy out of it. */
interface Entry {
  readonly decoded: Promise<Buffer>;
  memory: Buffer | undefined;
  readers: number;
  evicted: boolean;
}

export class UnitReader {
  private readonly cache: LruCache<number, Entry>;
  private readonly pool: BufferPool;
  private readonly readAhead: number;
  private lastUnit = -2;

  constructor(
    private readonly units: DecodedUnits,
    private readonly name: string,
    private readonly size: number,
    options: UnitReaderOptions,
  ) {
    // Units decoded ahead live in the cache too: with large units, fewer go ahead.
    const fits = Math.max(2, Math.floor(options.cacheBytes / Math.max(1, options.largestUnit)));
    this.cache = new LruCache(fits, (_, entry) => {
      entry.evicted = true;
      this.release(entry);
    });
    this.pool = new BufferPool(Math.max(options.cacheBytes / 2, 2 * options.largestUnit));
    this.readAhead = Math.min(options.readAhead, fits - 1);
  }

  async read(offset: number, length: number, into?: Buffer): Promise<Buffer> {
    checkRange(this.name, this.size, offset, length);
    const out = targetBuffer(length, into);
    if (length === 0) return out;
    const first = this.units.find(offset);
    const last = this.units.find(offset + length - 1);
    const pending: Array<Entry | undefined> = [];
    const direct: Array<Promise<void>> = [];
    for (let i = first; i <= last; i++) {
      const into = this.zeros(i) ? undefined : this.decodeInto(i, offset, out);
      if (into) direct.push(into);
      const entry = this.zeros(i) || into ? undefined : this.unit(i);
      if (entry) entry.readers++;
      pending.push(entry);
    }
    // A read covering as many units as there are decoders keeps them busy itself; units decoded ahead
    // would reach the next read through the cache, a copy each.
    if ((first === this.lastUnit || first === this.lastUnit + 1) && direct.length < this.readAhead) {
      for (let i = last + 1; i <= last + this.readAhead && i < this.units.count; i++) if (!this.zeros(i)) this.unit(i);
    }
    this.lastUnit = last;
    // Nothing may still be writing into `out` when the read settles, even when it fails.
    const directDone = Promise.allSettled(direct);
    try {
      for (let i = first; i <= last; i++) {
        const unitStart = this.units.start(i);
        const from = Math.max(offset, unitStart);
        const to = Math.min(offset + length, this.units.start(i + 1));
        const data = await pending[i - first]?.decoded;
        if (data) data.copy(out, from - offset, from - unitStart, to - unitStart);
        else if (this.zeros(i)) out.fill(0, from - offset, to - offset);
      }
    } finally {
      for (const entry of pending) {
        if (!entry) continue;
        entry.readers--;
        this.release(entry);
      }
      await directDone;
    }
    for (const d of await directDone) if (d.status === "rejected") throw d.reason;
    return out;
  }

  /** Unit i decoding straight into its place in `out` (the read at `offset`), when the read covers it whole and it is not cached. */
  private decodeInto(i: number, offset: number, out: Buffer): Promise<void> | undefined {
    const start = this.units.start(i);
    const end = this.units.start(i + 1);
    if (!this.units.decodeInto || start < offset || end > offset + out.length || this.cache.has(i)) return undefined;
    return this.units.decodeInto(i, out.subarray(start - offset, end - offset));
  }

  /** The ranges of [offset, offset+length) outside units known to be zeros, merged. */
  dataRanges(offset: number, length: number): Array<[number, number]> {
    checkRange(this.name, this.size, offset, length);
    const ranges: Array<[number, number]> = [];
    if (length === 0) return ranges;
    const end = offset + length;
    for (let i = this.units.find(offset); i < this.units.count && this.units.start(i) < end; i++) {
      if (this.zeros(i)) continue;
      const from = Math.max(offset, this.units.start(i));
      const to = Math.min(end, this.units.start(i + 1));
      const previous = ranges[ranges.length - 1];
      if (previous && previous[0] + previous[1] === from) previous[1] += to - from;
      else ranges.push([from, to - from]);
    }
    return ranges;
  }

  private zeros(i: number): boolean {
    return this.units.isZeros?.(i) ?? false;
  }

  private unit(i: number): Entry {
    let entry = this.cache.get(i);
    if (!entry) {
      const memory = this.pool.take(this.units.start(i + 1) - this.units.start(i));
      const decoded = this.units.decode(i, memory);
      // A unit decoded ahead may fail before anyone asks for it: its reader sees the error then.
      decoded.catch(() => {});
      entry = { decoded, memory, readers: 0, evicted: false };
      this.cache.set(i, entry);
    }
    return entry;
  }

  /** An entry out of the cache that no read copies from gives its memory back, once the decoder has stopped writing it. */
  private release(entry: Entry): void {
    const memory = entry.memory;
    if (!entry.evicted || entry.readers > 0 || !memory) return;
    entry.memory = undefined;
    const give = () => this.pool.give(memory);
    entry.decoded.then(give, give);
  }
}
