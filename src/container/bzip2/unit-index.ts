/**
 * Where each independently decodable piece of a bzip2 file is and what it
 * decodes to: a unit is a whole stream (its bytes go to libbz2 as they are:
 * pbzip2's and platter's one-block streams) or one block of a multi-block
 * stream (reframed as a stream of its own, reframe.ts). Typed arrays, so a
 * file of a million blocks costs ~26 MB.
 */
import { CorruptImageError } from "../../errors.js";
import { decodeDamage, encodeDamage, type Damage } from "../damage.js";

export interface Bzip2Unit {
  /** Bit offsets in the file: the stream's first byte, or the block's magic. */
  bitStart: number;
  bitEnd: number;
  level: number;
  /** A whole stream (byte-aligned), not a block to reframe. */
  whole: boolean;
  decodedSize: number;
  /** Decodes to zeros only (the indexer saw it): read as a hole, without decoding. */
  zeros?: boolean;
}

export class UnitIndex {
  private bitStart = new Float64Array(64);
  private bitEnd = new Float64Array(64);
  /** decodedAt[i] is where unit i starts in the image; decodedAt[count] is the size. */
  private decodedAt = new Float64Array(65);
  private level = new Uint8Array(64);
  private whole = new Uint8Array(64);
  private zeros = new Uint8Array(64);
  count = 0;
  streams = 0;
  damage: Damage | undefined;
  /** The file ends with platter's trailer (sizes known without decoding). */
  platter = false;
  /** Decoded size of the largest unit that is not zeros (what a cache of decoded units must plan for). */
  largestUnit = 0;

  add(unit: Bzip2Unit): void {
    if (this.count === this.bitStart.length) this.grow();
    const i = this.count++;
    this.bitStart[i] = unit.bitStart;
    this.bitEnd[i] = unit.bitEnd;
    this.level[i] = unit.level;
    this.whole[i] = unit.whole ? 1 : 0;
    this.zeros[i] = unit.zeros ? 1 : 0;
    this.decodedAt[i + 1] = (this.decodedAt[i] as number) + unit.decodedSize;
    if (!unit.zeros) this.largestUnit = Math.max(this.largestUnit, unit.decodedSize);
  }

  unit(i: number): Bzip2Unit {
    return {
      bitStart: this.bitStart[i] as number,
      bitEnd: this.bitEnd[i] as number,
      level: this.level[i] as number,
      whole: this.whole[i] === 1,
      zeros: this.zeros[i] === 1,
      decodedSize: (this.decodedAt[i + 1] as number) - (this.decodedAt[i] as number),
    };
  }

  isZeros(i: number): boolean {
    return this.zeros[i] === 1;
  }

  get size(): number {
    return this.decodedAt[this.count] as number;
  }

  start(i: number): number {
    return this.decodedAt[i] as number;
  }

  /** The unit holding decoded offset `offset` (0 <= offset < size); empty units are never found. */
  find(offset: number): number {
    let lo = 0;
    let hi = this.count - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >>> 1;
      if ((this.decodedAt[mid] as number) <= offset) lo = mid;
      else hi = mid - 1;
    }
    return lo;
  }

  private grow(): void {
    const n = this.bitStart.length * 2;
    const f64 = (old: Float64Array, size: number) => {
      const next = new Float64Array(size);
      next.set(old);
      return next;
    };
    const u8 = (old: Uint8Array) => {
      const next = new Uint8Array(n);
      next.set(old);
      return next;
    };
    this.bitStart = f64(this.bitStart, n);
    this.bitEnd = f64(this.bitEnd, n);
    this.decodedAt = f64(this.decodedAt, n + 1);
    this.level = u8(this.level);
    this.whole = u8(this.whole);
    this.zeros = u8(this.zeros);
  }
}

/*
 * Kept in the IndexCache as "PLBZIX01", u32 count, u32 streams, u8 flags
 * (1 platter, 2 damaged), then per unit f64 bitStart, f64 bitEnd, f64
 * decodedSize, u8 level, u8 whole (+2 when it decodes to zeros); then, if damaged, f64 offset, u32 length,
 * message.
 */
const MAGIC = "PLBZIX02";
const UNIT_BYTES = 26;

export function encodeUnitIndex(index: UnitIndex): Buffer {
  const head = Buffer.alloc(17);
  head.write(MAGIC, 0, "latin1");
  head.writeUInt32LE(index.count, 8);
  head.writeUInt32LE(index.streams, 12);
  head[16] = (index.platter ? 1 : 0) | (index.damage ? 2 : 0);
  const body = Buffer.alloc(index.count * UNIT_BYTES);
  for (let i = 0; i < index.count; i++) {
    const u = index.unit(i);
    const at = i * UNIT_BYTES;
    body.writeDoubleLE(u.bitStart, at);
    body.writeDoubleLE(u.bitEnd, at + 8);
    body.writeDoubleLE(u.decodedSize, at + 16);
    body[at + 24] = u.level;
    body[at + 25] = (u.whole ? 1 : 0) | (u.zeros ? 2 : 0);
  }
  return Buffer.concat(index.damage ? [head, body, encodeDamage(index.damage)] : [head, body]);
}

/** A cached index, checked against the file's size; one that does not fit is a CorruptImageError (rebuild it). */
export function decodeUnitIndex(buf: Buffer, fileSize: number): UnitIndex {
  const bad = (why: string) => new CorruptImageError(`bzip2 index cache: ${why}`);
  if (buf.length < 17 || buf.toString("latin1", 0, 8) !== MAGIC) throw bad("not a platter bzip2 index");
  const count = buf.readUInt32LE(8);
  if (buf.length < 17 + count * UNIT_BYTES) throw bad("truncated");
  const index = new UnitIndex();
  index.streams = buf.readUInt32LE(12);
  index.platter = ((buf[16] as number) & 1) !== 0;
  let previousEnd = 0;
  for (let i = 0; i < count; i++) {
    const at = 17 + i * UNIT_BYTES;
    const unit: Bzip2Unit = {
      bitStart: buf.readDoubleLE(at),
      bitEnd: buf.readDoubleLE(at + 8),
      decodedSize: buf.readDoubleLE(at + 16),
      level: buf[at + 24] as number,
      whole: ((buf[at + 25] as number) & 1) === 1,
      zeros: ((buf[at + 25] as number) & 2) === 2,
    };
    const fits = unit.bitStart >= previousEnd && unit.bitEnd > unit.bitStart && unit.bitEnd <= fileSize * 8;
    if (!fits || unit.level < 1 || unit.level > 9 || !Number.isSafeInteger(unit.decodedSize) || unit.decodedSize < 0) {
      throw bad(`unit ${i} does not fit the file`);
    }
    previousEnd = unit.bitEnd;
    index.add(unit);
  }
  if ((buf[16] as number) & 2) {
    index.damage = decodeDamage(buf, 17 + count * UNIT_BYTES);
    if (!index.damage) throw bad("truncated");
  }
  return index;
}
