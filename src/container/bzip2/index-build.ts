/**
 * Index a bzip2 file: what each unit (a stream or a block) decodes to.
 *
 * - platter's .bz2 ends with a trailer giving the chunk size and image size
 *   (platter-trailer.ts): one pass of Buffer.indexOf finds the streams, and
 *   nothing is decoded.
 * - Any other file (bzip2, pbzip2, concatenations) says nothing about sizes:
 *   every block is decoded once (on every core), its CRC checked, its size
 *   noted. A block magic that is really data splits a block in two: the
 *   first part then fails to decode, and is retried joined with the next.
 *
 * Units seen to decode to zeros only are flagged (reads fill them without
 * decoding: disk images are full of such runs). platter's zero chunks are
 * all encoded alike, so one decode per distinct encoding flags them all.
 *
 * Damage (truncation, a block that will not decode) ends the index: the
 * image is what decoded before it.
 */
import { availableParallelism } from "node:os";
import type { BlockSource } from "../../io/block-source.js";
import { isAllZero } from "../../io/zeros.js";
import type { BufferPool } from "../../util/buffer-pool.js";
import { decompressStream, type DecodeFailure } from "./libbz2.js";
import { scanMarkers } from "./marker-scan.js";
import { decodePlatterTrailer, TRAILER_BYTES } from "./platter-trailer.js";
import { reframeBlock } from "./reframe.js";
import { maxBlockInput, maxBlockOutput } from "./stream-header.js";
import { type Candidate, parseStreams, streamEndsAt, streamStarts } from "./stream-scan.js";
import { UnitIndex } from "./unit-index.js";

/** A block split by false markers is retried joined with up to this many more pieces. */
const MAX_JOINED = 4;
/** Streams of platter's files this small are checked for zeros. */
const ZERO_PROBE = 4096;

/** What decoding a candidate told: its size and whether it is all zeros. */
interface Decoded {
  size: number;
  zeros: boolean;
}

export async function buildUnitIndex(source: BlockSource, onWarning?: (message: string) => void): Promise<UnitIndex> {
  return (await platterIndex(source, onWarning)) ?? decodedIndex(source, onWarning);
}

/** The index of a .bz2 platter wrote, from its trailer; undefined for any other file. */
async function platterIndex(source: BlockSource, onWarning?: (message: string) => void): Promise<UnitIndex | undefined> {
  if (source.size < TRAILER_BYTES) return undefined;
  const dataEnd = source.size - TRAILER_BYTES;
  const trailer = decodePlatterTrailer(await source.read(dataEnd, TRAILER_BYTES));
  if (!trailer) return undefined;
  const starts = await streamStarts(source, dataEnd);
  const expected = Math.ceil(trailer.imageSize / trailer.chunkSize);
  const endOk = dataEnd === 0 || streamEndsAt(await source.read(Math.max(0, dataEnd - 16), Math.min(16, dataEnd)), Math.min(16, dataEnd));
  if (starts.length !== expected || !endOk) {
    onWarning?.(`${source.name}: platter's trailer promises ${expected} bzip2 streams, the file has ${starts.length}: decoding every block to index it`);
    return undefined;
  }
  const index = new UnitIndex();
  index.platter = true;
  index.streams = starts.length;
  let zeroStream: Buffer | undefined;
  for (const [i, { start, level }] of starts.entries()) {
    const end = starts[i + 1]?.start ?? dataEnd;
    const decodedSize = i + 1 < starts.length ? trailer.chunkSize : trailer.imageSize - i * trailer.chunkSize;
    let zeros = false;
    if (end - start <= ZERO_PROBE) {
      const bytes = await source.read(start, end - start);
      zeros = zeroStream?.equals(bytes) ?? false;
      if (!zeros && zeroStream === undefined) {
        const decoded = await decompressStream(bytes, decodedSize);
        zeros = typeof decoded !== "string" && decoded.length === decodedSize && isAllZero(decoded);
        if (zeros) zeroStream = Buffer.from(bytes);
      }
    }
    index.add({ bitStart: start * 8, bitEnd: end * 8, level, whole: true, decodedSize, zeros });
  }
  return index;
}

type Piece = Pick<Candidate, "bitStart" | "bitEnd" | "level" | "whole">;

/**
 * Decode one candidate: a whole stream as it is, a block reframed as a
 * stream of its own (into `into`, when given; its compressed bytes read into
 * memory from `inputs`, when given).
 */
export async function decodeCandidate(source: BlockSource, c: Piece, maxSize: number, into?: Buffer, inputs?: BufferPool): Promise<Buffer | DecodeFailure> {
  const from = Math.floor(c.bitStart / 8);
  const length = Math.ceil(c.bitEnd / 8) - from;
  const input = inputs?.take(length);
  try {
    const bytes = await source.read(from, length, input);
    if (c.whole) return await decompressStream(bytes, maxSize, into);
    return await decompressStream(reframeBlock(bytes, c.bitStart - from * 8, c.bitEnd - from * 8, c.level), maxSize, into);
  } finally {
    if (input) inputs?.give(input);
  }
}

async function decodedIndex(source: BlockSource, onWarning?: (message: string) => void): Promise<UnitIndex> {
  const layout = await parseStreams(source, await scanMarkers(source));
  const { candidates } = layout;
  const index = new UnitIndex();
  index.streams = layout.streams;
  // Output buffers, one per decode in flight, reused: a block may decode to 46 MB, and only its size is kept.
  const buffers: Buffer[] = [];
  const attempt = async (c: Candidate, bitEnd = c.bitEnd): Promise<Decoded | DecodeFailure> => {
    if ((bitEnd - c.bitStart) / 8 > maxBlockInput(c.level)) return "too large";
    const buffer = buffers.pop() ?? Buffer.allocUnsafe(maxBlockOutput(9));
    try {
      const decoded = await decodeCandidate(source, { ...c, bitEnd }, maxBlockOutput(c.level), buffer);
      return typeof decoded === "string" ? decoded : { size: decoded.length, zeros: isAllZero(decoded) };
    } finally {
      buffers.push(buffer);
    }
  };
  // Candidates decode ahead, one per core; results are taken in order.
  const width = availableParallelism();
  const ahead = new Map<number, Promise<Decoded | DecodeFailure>>();
  const result = (i: number) => {
    for (let k = i; k < Math.min(candidates.length, i + width); k++) {
      if (!ahead.has(k)) {
        const p = attempt(candidates[k] as Candidate);
        p.catch(() => {});
        ahead.set(k, p);
      }
    }
    const p = ahead.get(i) as Promise<Decoded | DecodeFailure>;
    ahead.delete(i);
    return p;
  };
  for (let i = 0; i < candidates.length; ) {
    const c = candidates[i] as Candidate;
    let decoded = await result(i);
    let used = 1;
    // A failed block may be the first piece of one a false marker split: join it with the next pieces of its stream.
    for (let j = i + 1; typeof decoded === "string" && decoded !== "too large" && !c.whole && j < Math.min(candidates.length, i + MAX_JOINED); j++) {
      const next = candidates[j] as Candidate;
      if (next.stream !== c.stream) break;
      const joined = await attempt(c, next.bitEnd);
      if (typeof joined !== "string") {
        decoded = joined;
        used = j - i + 1;
      }
    }
    if (typeof decoded === "string") {
      const what = decoded === "truncated" ? "is cut short (truncated file)" : decoded === "too large" ? "is larger than a bzip2 block can be" : "does not decode (bad data or CRC)";
      index.damage = { compressedOffset: Math.floor(c.bitStart / 8), message: `the bzip2 ${c.whole ? "stream" : "block"} at offset ${Math.floor(c.bitStart / 8)} ${what}` };
      break;
    }
    const last = candidates[i + used - 1] as Candidate;
    index.add({ bitStart: c.bitStart, bitEnd: last.bitEnd, level: c.level, whole: c.whole, decodedSize: decoded.size, zeros: decoded.zeros });
    for (let k = i + 1; k < i + used; k++) ahead.delete(k);
    i += used;
  }
  if (!index.damage && layout.damage) index.damage = layout.damage;
  if (!index.damage && layout.end < source.size) {
    onWarning?.(`${source.name}: ${source.size - layout.end} bytes after the last bzip2 stream (offset ${layout.end}) ignored`);
  }
  return index;
}
