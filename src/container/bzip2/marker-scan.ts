/**
 * Find the block magic and end-of-stream magic of bzip2 (48 bits each, at
 * any bit offset) in a whole file. For each of the 8 bit offsets a marker
 * can start at, its middle is 5 whole bytes (6 when aligned): Buffer.indexOf
 * finds those natively, and the partial bytes at either end are checked.
 * A match can also be data that happens to look like a marker; the index
 * builder survives those (index-build.ts).
 */
import { allocHuge } from "../../io/aligned.js";
import type { BlockSource } from "../../io/block-source.js";
import { BLOCK_MAGIC, END_MAGIC, MAGIC_BITS } from "./stream-header.js";

export interface Marker {
  /** Bit offset in the file. */
  bit: number;
  kind: "block" | "end";
}

interface Pattern {
  kind: Marker["kind"];
  /** Bit offset of the marker within its first byte (0: most significant). */
  shift: number;
  needle: Buffer;
  /** Bytes of the file before the needle's first byte that the marker starts in. */
  lead: number;
  /** The marker's bits in its first partial byte (low 8 - shift bits), and in the byte after the needle (high `shift` bits). */
  head: number;
  tail: number;
}

function patterns(kind: Marker["kind"], magic: bigint): Pattern[] {
  const list: Pattern[] = [];
  for (let shift = 0; shift < 8; shift++) {
    if (shift === 0) {
      list.push({ kind, shift, needle: bytesOf(magic, 6), lead: 0, head: 0, tail: 0 });
      continue;
    }
    const middle = (magic >> BigInt(shift)) & 0xff_ffff_ffffn;
    list.push({
      kind,
      shift,
      needle: bytesOf(middle, 5),
      lead: 1,
      head: Number(magic >> BigInt(MAGIC_BITS - (8 - shift))),
      tail: Number(magic & ((1n << BigInt(shift)) - 1n)),
    });
  }
  return list;
}

function bytesOf(value: bigint, count: number): Buffer {
  const out = Buffer.alloc(count);
  for (let i = count - 1; i >= 0; i--, value >>= 8n) out[i] = Number(value & 0xffn);
  return out;
}

const PATTERNS = [...patterns("block", BLOCK_MAGIC), ...patterns("end", END_MAGIC)];
/** A marker touches at most 7 bytes: chunks overlap by that much less one. */
const OVERLAP = 6;
const CHUNK = 4 << 20;

/** Markers whose first byte lies in buf[0, limit), with bit offsets counted from `base` (the file offset of buf[0]). */
export function findMarkers(buf: Buffer, base: number, limit: number, out: Marker[]): void {
  for (const p of PATTERNS) {
    for (let at = buf.indexOf(p.needle, p.lead); at >= 0; at = buf.indexOf(p.needle, at + 1)) {
      const first = at - p.lead;
      if (first >= limit) break;
      if (p.shift > 0) {
        const after = at + p.needle.length;
        if (after >= buf.length) continue;
        if (((buf[first] as number) & (0xff >>> p.shift)) !== p.head) continue;
        if ((buf[after] as number) >>> (8 - p.shift) !== p.tail) continue;
      }
      out.push({ bit: (base + first) * 8 + p.shift, kind: p.kind });
    }
  }
}

/** Every marker in the file, in order. */
export async function scanMarkers(source: BlockSource): Promise<Marker[]> {
  const found: Marker[] = [];
  // One buffer for every chunk: fresh memory costs a page fault per 4 KiB.
  const scratch = allocHuge(Math.min(CHUNK + OVERLAP, source.size));
  for (let at = 0; at < source.size; at += CHUNK) {
    const length = Math.min(CHUNK + OVERLAP, source.size - at);
    findMarkers(await source.read(at, length, scratch.subarray(0, length)), at, Math.min(CHUNK, length), found);
  }
  return found.sort((a, b) => a.bit - b.bit);
}
