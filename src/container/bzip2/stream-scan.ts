/**
 * Finding bzip2 streams without decoding them.
 *
 * - streamStarts: byte-aligned stream starts ("BZh", a level digit, then a
 *   block magic right away: how every non-empty stream begins), each but the
 *   first confirmed by the end-of-stream marker just before it. For files
 *   made of one-block streams (platter's, pbzip2's) this is one fast pass.
 * - parseStreams: the streams and candidate blocks of any bzip2 file, from
 *   the bit-level markers (marker-scan.ts). A marker inside data makes a
 *   block look like two; the index builder merges them back.
 */
import { CorruptImageError } from "../../errors.js";
import { allocHuge } from "../../io/aligned.js";
import type { BlockSource } from "../../io/block-source.js";
import { readBits } from "./bits.js";
import type { Marker } from "./marker-scan.js";
import { CRC_BITS, decodeStreamHeader, END_MAGIC, HEADER_BYTES, MAGIC_BITS } from "./stream-header.js";

const BLOCK_MAGIC_BYTES = Buffer.from("314159265359", "hex");
const CHUNK = 4 << 20;
/** The end marker, CRC and up to 7 padding bits before a stream start. */
const END_SPAN_BYTES = Math.ceil((MAGIC_BITS + CRC_BITS + 7) / 8);

/** Does a stream end exactly at byte `at` of `bytes` (its end marker, CRC, then zero padding)? */
export function streamEndsAt(bytes: Buffer, at: number): boolean {
  for (let pad = 0; pad < 8; pad++) {
    const marker = at * 8 - pad - CRC_BITS - MAGIC_BITS;
    if (marker < 0) return false;
    if (pad && readBits(bytes, at * 8 - pad, pad) !== 0) continue;
    const high = readBits(bytes, marker, 24);
    const low = readBits(bytes, marker + 24, 24);
    if (BigInt(high) * 2n ** 24n + BigInt(low) === END_MAGIC) return true;
  }
  return false;
}

/** Starts (and levels) of the streams in source[0, end) that begin with a block, in order. */
export async function streamStarts(source: BlockSource, end: number): Promise<Array<{ start: number; level: number }>> {
  const starts: Array<{ start: number; level: number }> = [];
  // One buffer for every chunk: a fresh one each costs a page fault per 4 KiB (on this pass over a whole
  // 47 MiB .bz2 that was 12,000 faults, more than the file's decoding took).
  const scratch = allocHuge(Math.min(end, END_SPAN_BYTES + HEADER_BYTES + CHUNK + BLOCK_MAGIC_BYTES.length));
  for (let at = 0; at < end; at += CHUNK) {
    // Read from before the chunk, so a stream header and the end marker before it are in the same buffer.
    const from = Math.max(0, at - END_SPAN_BYTES - HEADER_BYTES);
    const to = Math.min(end, at + CHUNK + BLOCK_MAGIC_BYTES.length);
    const buf = await source.read(from, to - from, scratch.subarray(0, to - from));
    for (let i = buf.indexOf(BLOCK_MAGIC_BYTES, at - from); i >= 0 && from + i < at + CHUNK; i = buf.indexOf(BLOCK_MAGIC_BYTES, i + 1)) {
      const start = i - HEADER_BYTES;
      const level = start >= 0 ? decodeStreamHeader(buf, start) : undefined;
      if (level === undefined) continue;
      if (from + start === 0 || streamEndsAt(buf, start)) starts.push({ start: from + start, level });
    }
  }
  return starts;
}

export interface Candidate {
  /** Bit range in the file: a whole stream (from its header), or one block (from its magic). */
  bitStart: number;
  bitEnd: number;
  level: number;
  whole: boolean;
  /** Which stream it belongs to (candidates of one stream may merge). */
  stream: number;
}

export interface StreamLayout {
  candidates: Candidate[];
  streams: number;
  /** Where the last stream ended (bytes after it are not bzip2). */
  end: number;
  /** A stream that stops before its first block or end marker (the file cut short there). */
  damage?: { compressedOffset: number; message: string };
}

/**
 * Streams and blocks from the markers. An end marker counts only where a
 * stream can end: zero padding after its CRC, then the end of the file, the
 * next stream's header, or bytes no marker follows (trailing garbage).
 */
export async function parseStreams(source: BlockSource, markers: Marker[]): Promise<StreamLayout> {
  const candidates: Candidate[] = [];
  let streams = 0;
  let pos = 0;
  let m = 0;
  while (pos < source.size) {
    const head = await source.read(pos, Math.min(HEADER_BYTES, source.size - pos));
    const level = decodeStreamHeader(head);
    if (level === undefined) {
      if (pos === 0) throw new CorruptImageError(`${source.name}: no bzip2 stream header (BZh1..BZh9) at offset 0`);
      break;
    }
    const first = (pos + HEADER_BYTES) * 8;
    while (m < markers.length && (markers[m] as Marker).bit < first) m++;
    if (m >= markers.length || (markers[m] as Marker).bit !== first) {
      const message = `the bzip2 stream at offset ${pos} has neither a block nor an end marker after its header`;
      return { candidates, streams, end: pos, damage: { compressedOffset: pos, message } };
    }
    const blocks: number[] = [];
    let endBit: number | undefined;
    let next = source.size;
    for (; m < markers.length; m++) {
      const marker = markers[m] as Marker;
      if (marker.kind === "block") {
        blocks.push(marker.bit);
        continue;
      }
      const after = Math.ceil((marker.bit + MAGIC_BITS + CRC_BITS) / 8);
      if (after > source.size || !(await isStreamEnd(source, marker.bit, m + 1 < markers.length))) continue;
      endBit = marker.bit;
      next = after;
      m++;
      break;
    }
    const streamEnd = endBit ?? source.size * 8;
    if (blocks.length === 1 && blocks[0] === first && endBit !== undefined) {
      candidates.push({ bitStart: pos * 8, bitEnd: next * 8, level, whole: true, stream: streams });
    } else {
      blocks.forEach((bit, k) => candidates.push({ bitStart: bit, bitEnd: blocks[k + 1] ?? streamEnd, level, whole: false, stream: streams }));
    }
    streams++;
    pos = next;
  }
  return { candidates, streams, end: pos };
}

/** The end marker at `bit` ends a stream: zero padding, then the end of the file, another stream, or (no marker later) trailing bytes. */
async function isStreamEnd(source: BlockSource, bit: number, moreMarkers: boolean): Promise<boolean> {
  const crcEnd = bit + MAGIC_BITS + CRC_BITS;
  const after = Math.ceil(crcEnd / 8);
  const from = after - 1;
  const bytes = await source.read(from, Math.min(source.size, after + HEADER_BYTES) - from);
  const pad = after * 8 - crcEnd;
  if (pad && readBits(bytes, 8 - pad, pad) !== 0) return false;
  if (after === source.size || !moreMarkers) return true;
  return decodeStreamHeader(bytes, 1) !== undefined;
}
