/**
 * Reads of a compressed image that decodes in independent units (gzip spans
 * and members, bzip2 blocks and streams): each read decodes the units it
 * touches, all at once (the decoders run off the main thread), keeps the
 * last ones in an LRU cache, and when reads go forward it decodes the next
 * units ahead, so a sequential reader keeps every core busy.
 *
 * Memory: the cache holds at most `cacheBytes` of decoded units (sized from
 * the largest unit, two at least), read-ahead included, plus the units of
 * reads in flight.
 */
import { checkRange, targetBuffer } from "../io/bounds.js";
import { LruCache } from "../util/lru.js";

export interface DecodedUnits {
  readonly count: number;
  /** Decoded offset where unit i starts; start(count) is the image size. */
  start(i: number): number;
  /** The unit containing decoded offset `offset` (0 <= offset < size). */
  find(offset: number): number;
  /** Exactly start(i+1) - start(i) bytes, or a CorruptImageError. */
  decode(i: number): Promise<Buffer>;
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

export class UnitReader {
  private readonly cache: LruCache<number, Promise<Buffer>>;
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
    this.cache = new LruCache(fits);
    this.readAhead = Math.min(options.readAhead, fits - 1);
  }

  async read(offset: number, length: number, into?: Buffer): Promise<Buffer> {
    checkRange(this.name, this.size, offset, length);
    const out = targetBuffer(length, into);
    if (length === 0) return out;
    const first = this.units.find(offset);
    const last = this.units.find(offset + length - 1);
    const pending: Array<Promise<Buffer> | undefined> = [];
    for (let i = first; i <= last; i++) pending.push(this.zeros(i) ? undefined : this.unit(i));
    if (first === this.lastUnit || first === this.lastUnit + 1) {
      for (let i = last + 1; i <= last + this.readAhead && i < this.units.count; i++) if (!this.zeros(i)) this.unit(i);
    }
    this.lastUnit = last;
    for (let i = first; i <= last; i++) {
      const unitStart = this.units.start(i);
      const from = Math.max(offset, unitStart);
      const to = Math.min(offset + length, this.units.start(i + 1));
      const data = await pending[i - first];
      if (data) data.copy(out, from - offset, from - unitStart, to - unitStart);
      else out.fill(0, from - offset, to - offset);
    }
    return out;
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

  private unit(i: number): Promise<Buffer> {
    let decoded = this.cache.get(i);
    if (!decoded) {
      decoded = this.units.decode(i);
      // A unit decoded ahead may fail before anyone asks for it: its reader sees the error then.
      decoded.catch(() => {});
      this.cache.set(i, decoded);
    }
    return decoded;
  }
}
