/**
 * Where decoding a gzip file may start: a list of access points in decoded
 * order. Decoding runs from one point to the next (a "span").
 *
 * - A member point is the start of a gzip member (its header, byte-aligned,
 *   no history): the span from it is inflated as gzip, CRC-checked when it
 *   ends at a member boundary. One member point may cover several small
 *   members (BGZF's 64 KiB ones): Node's gunzip reads members back to back.
 * - An inner point is a deflate block boundary inside a member (zran.c): the
 *   byte `in`, the `bits` (0..7) of the byte before it already in the block,
 *   and the window of up to 32 KiB of output before it.
 *
 * Invariant: a span that starts at an inner point ends inside the same
 * member, or at its end (a raw inflate stops at the member's last block).
 *
 * A span the builder saw decode to zeros only is flagged: reads fill zeros
 * without inflating, and dataRanges() calls it a hole (disk images are
 * mostly such runs).
 *
 * The points live in typed arrays, so a file of a million members costs
 * ~18 MB, not a million objects; thin() halves the points (and doubles the
 * span) when a limit is reached, so the index stays bounded on any image.
 */
import { CorruptImageError } from "../../errors.js";
import { decodeDamage, encodeDamage, type Damage } from "../damage.js";
import { isAllZero, ZEROS } from "../../io/zeros.js";

export const MEMBER = 0;
export const INNER = 1;

export interface AccessPoint {
  kind: typeof MEMBER | typeof INNER;
  /** Decoded offset. */
  decoded: number;
  /** Member points: the header's byte offset. Inner points: `in`, the first byte wholly after the point. */
  compressed: number;
  /** Inner points: bits of byte `in - 1` that belong after the point. */
  bits: number;
  /** Inner points: the decoded bytes before the point (shared, never written to). */
  window?: Buffer;
  /**
   * The span from this point decodes to zeros so far: builders that watch the
   * output add points with it set and call sawData() when a byte is not zero.
   */
  zeros?: boolean;
}

/** Bounds that keep an index small whatever the image: windows are 32 KiB each. */
export const MAX_WINDOWS = 1024;
export const MAX_POINTS = 1 << 20;

export class AccessIndex {
  private decodedAt = new Float64Array(64);
  private compressedAt = new Float64Array(64);
  private bitsAt = new Uint8Array(64);
  private kindAt = new Uint8Array(64);
  private zerosAt = new Uint8Array(64);
  private windows: Array<Buffer | undefined> = [];
  private windowCount = 0;
  count = 0;
  /** Decoded bytes the index covers: the readable image. */
  size = 0;
  /** Compressed bytes the index covers: where the last span's input ends. */
  compressedEnd = 0;
  /** Members seen (for describe()). */
  members = 0;
  /** The last span ends cleanly at a member's end (else it is cut short: truncated data). */
  endsAtMemberEnd = true;
  damage: Damage | undefined;
  /** The file ends with platter's end member. */
  complete = false;

  constructor(
    /** Decoded bytes between points that the builder aims for; doubles with thin(). */
    public span: number,
  ) {}

  add(point: AccessPoint): void {
    if (this.count > 0 && point.decoded < this.decodedAt[this.count - 1]!) {
      throw new RangeError("access points must be added in decoded order");
    }
    if (this.count === this.decodedAt.length) this.grow();
    const i = this.count++;
    this.decodedAt[i] = point.decoded;
    this.compressedAt[i] = point.compressed;
    this.bitsAt[i] = point.bits;
    this.kindAt[i] = point.kind;
    this.zerosAt[i] = point.zeros ? 1 : 0;
    if (point.window) {
      // Windows of zeros (common in disk images) share one buffer and cost nothing.
      const window = isAllZero(point.window) ? ZEROS.subarray(0, point.window.length) : point.window;
      this.windows[i] = window;
      if (ownsMemory(window)) this.windowCount++;
    }
    if (this.windowCount > MAX_WINDOWS || this.count > MAX_POINTS) this.thin();
  }

  point(i: number): AccessPoint {
    const kind = this.kindAt[i] === MEMBER ? MEMBER : INNER;
    return { kind, decoded: this.decodedAt[i]!, compressed: this.compressedAt[i]!, bits: this.bitsAt[i]!, window: this.windows[i] };
  }

  /** Decoded offset of point i (point(i).decoded, without making the object). */
  decodedOf(i: number): number {
    return this.decodedAt[i] as number;
  }

  get last(): AccessPoint | undefined {
    return this.count ? this.point(this.count - 1) : undefined;
  }

  /** Span i decodes to zeros only. */
  spanIsZeros(i: number): boolean {
    return this.zerosAt[i] === 1;
  }

  /** The span of the last point holds a byte that is not zero. */
  sawData(): void {
    if (this.count > 0) this.zerosAt[this.count - 1] = 0;
  }

  /** Decoded end of span i. */
  spanEnd(i: number): number {
    return i + 1 < this.count ? this.decodedAt[i + 1]! : this.size;
  }

  /** Compressed bytes span i needs, from its point: up to the next point's byte (or the end of the indexed data). */
  spanCompressedEnd(i: number): number {
    return i + 1 < this.count ? this.compressedAt[i + 1]! : this.compressedEnd;
  }

  /** Span i ends where a member ends (so gunzip can check the member's CRC). */
  spanEndsAtMember(i: number): boolean {
    return i + 1 < this.count ? this.kindAt[i + 1] === MEMBER : this.endsAtMemberEnd;
  }

  /** The span holding decoded offset `offset` (0 <= offset < size). */
  find(offset: number): number {
    let lo = 0;
    let hi = this.count - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >>> 1;
      if (this.decodedAt[mid]! <= offset) lo = mid;
      else hi = mid - 1;
    }
    return lo;
  }

  /** Largest span in decoded bytes (what a cache of spans must plan for). */
  largestSpan(): number {
    let most = 0;
    for (let i = 0; i < this.count; i++) most = Math.max(most, this.spanEnd(i) - this.decodedOf(i));
    return most;
  }

  /** Drop points past `size` (a member whose CRC failed is cut off with everything after it). */
  truncate(size: number): void {
    while (this.count > 1 && this.decodedAt[this.count - 1]! >= size) {
      this.count--;
      if (ownsMemory(this.windows[this.count])) this.windowCount--;
      this.windows.length = this.count;
    }
    this.size = size;
  }

  /**
   * Keep every other point that may go, and double the span. An inner point
   * may always go (its span merges into the previous one, in the same member
   * or starting at a member point); a member point only after a member point
   * (a span from an inner point must not run into the next member). A merged
   * span is zeros if both parts were.
   */
  thin(): void {
    let kept = 1;
    let dropNext = true;
    let windows = ownsMemory(this.windows[0]) ? 1 : 0;
    for (let i = 1; i < this.count; i++) {
      const mayGo = this.kindAt[i] === INNER || this.kindAt[kept - 1] === MEMBER;
      if (mayGo && dropNext) {
        dropNext = false;
        if (this.zerosAt[i] === 0) this.zerosAt[kept - 1] = 0;
        continue;
      }
      dropNext = true;
      this.decodedAt[kept] = this.decodedAt[i]!;
      this.compressedAt[kept] = this.compressedAt[i]!;
      this.bitsAt[kept] = this.bitsAt[i]!;
      this.kindAt[kept] = this.kindAt[i]!;
      this.zerosAt[kept] = this.zerosAt[i]!;
      this.windows[kept] = this.windows[i];
      if (ownsMemory(this.windows[kept])) windows++;
      kept++;
    }
    this.count = kept;
    this.windows.length = kept;
    this.windowCount = windows;
    this.span *= 2;
  }

  private grow(): void {
    const size = this.decodedAt.length * 2;
    const grown = <T extends Float64Array | Uint8Array>(old: T, make: (n: number) => T): T => {
      const next = make(size);
      next.set(old);
      return next;
    };
    this.decodedAt = grown(this.decodedAt, (n) => new Float64Array(n));
    this.compressedAt = grown(this.compressedAt, (n) => new Float64Array(n));
    this.bitsAt = grown(this.bitsAt, (n) => new Uint8Array(n));
    this.kindAt = grown(this.kindAt, (n) => new Uint8Array(n));
    this.zerosAt = grown(this.zerosAt, (n) => new Uint8Array(n));
  }
}

function ownsMemory(window: Buffer | undefined): boolean {
  return window !== undefined && window.buffer !== ZEROS.buffer;
}

/*
 * The index kept in the IndexCache: "PLGZIX01", then u32 count, u32 members,
 * u8 flags (1 complete, 2 endsAtMemberEnd, 4 damaged), f64 size, f64
 * compressedEnd, f64 span, then per point f64 decoded, f64 compressed, u8
 * kind (+2 when its span is zeros), u8 bits, u16 window length, window bytes; then, if damaged, f64
 * damage offset, u32 message length, message (UTF-8).
 */
const INDEX_MAGIC = "PLGZIX02";

export function encodeAccessIndex(index: AccessIndex): Buffer {
  const parts: Buffer[] = [];
  const head = Buffer.alloc(8 + 4 + 4 + 1 + 24);
  head.write(INDEX_MAGIC, 0, "latin1");
  head.writeUInt32LE(index.count, 8);
  head.writeUInt32LE(index.members, 12);
  head[16] = (index.complete ? 1 : 0) | (index.endsAtMemberEnd ? 2 : 0) | (index.damage ? 4 : 0);
  head.writeDoubleLE(index.size, 17);
  head.writeDoubleLE(index.compressedEnd, 25);
  head.writeDoubleLE(index.span, 33);
  parts.push(head);
  for (let i = 0; i < index.count; i++) {
    const p = index.point(i);
    const entry = Buffer.alloc(20);
    entry.writeDoubleLE(p.decoded, 0);
    entry.writeDoubleLE(p.compressed, 8);
    entry[16] = p.kind | (index.spanIsZeros(i) ? 2 : 0);
    entry[17] = p.bits;
    entry.writeUInt16LE(p.window ? p.window.length : 0, 18);
    parts.push(entry);
    if (p.window) parts.push(p.window);
  }
  if (index.damage) parts.push(encodeDamage(index.damage));
  return Buffer.concat(parts);
}

/**
 * Read a cached index back, checking it against the file it claims to
 * index; a cache that does not fit (another file, a damaged cache) is
 * refused with a CorruptImageError, and the caller builds the index again.
 */
export function decodeAccessIndex(buf: Buffer, compressedSize: number): AccessIndex {
  const bad = (why: string) => new CorruptImageError(`gzip index cache: ${why}`);
  if (buf.length < 41 || buf.toString("latin1", 0, 8) !== INDEX_MAGIC) throw bad("not a platter gzip index");
  const count = buf.readUInt32LE(8);
  const flags = buf[16] as number;
  const index = new AccessIndex(buf.readDoubleLE(33));
  index.members = buf.readUInt32LE(12);
  index.complete = (flags & 1) !== 0;
  index.endsAtMemberEnd = (flags & 2) !== 0;
  const size = buf.readDoubleLE(17);
  index.compressedEnd = buf.readDoubleLE(25);
  if (!Number.isSafeInteger(size) || !Number.isSafeInteger(index.compressedEnd) || index.compressedEnd > compressedSize) {
    throw bad("sizes do not fit the file");
  }
  let at = 41;
  for (let i = 0; i < count; i++) {
    if (at + 20 > buf.length) throw bad("truncated");
    const decoded = buf.readDoubleLE(at);
    const compressed = buf.readDoubleLE(at + 8);
    const kind = ((buf[at + 16] as number) & 1) === MEMBER ? MEMBER : INNER;
    const zeros = ((buf[at + 16] as number) & 2) !== 0;
    const bits = buf[at + 17] as number;
    const windowLength = buf.readUInt16LE(at + 18);
    at += 20;
    if (at + windowLength > buf.length) throw bad("truncated");
    const ordered = i === 0 ? decoded === 0 : decoded >= index.point(i - 1).decoded;
    if (!ordered || decoded > size || compressed > index.compressedEnd || bits > 7) throw bad(`point ${i} is out of order`);
    const window = windowLength ? Buffer.from(buf.subarray(at, at + windowLength)) : undefined;
    at += windowLength;
    index.add({ kind, decoded, compressed, bits, window, zeros });
  }
  if (count === 0) throw bad("no access points");
  if (flags & 4) {
    index.damage = decodeDamage(buf, at);
    if (!index.damage) throw bad("truncated");
  }
  index.size = size;
  return index;
}
