/**
 * Where each frame of a zstd file is and what it holds. A file in the
 * seekable format says so in its seek table (instant). Any other file is
 * walked frame by frame, block header by block header (a few bytes read per
 * 128 KiB block); a frame whose header does not give its content size is
 * decoded once to learn it. A walked index is kept in the index cache, so
 * the next command on the same file starts at once.
 */
import { CorruptImageError, UnsupportedError } from "../../errors.js";
import type { BlockSource } from "../../io/block-source.js";
import type { ContainerContext } from "../format.js";
import { FrameTable, MAX_FRAMES } from "../frame-table.js";
import { CompressedInput } from "../framed-source.js";
import { WindowReader } from "../window-reader.js";
import { zstdError, WINDOW_LOG_MAX } from "./frame-codec.js";
import {
  BLOCK_HEADER,
  CHECKSUM_SIZE,
  decodeBlockHeader,
  decodeFrameHeader,
  isSkippableMagic,
  MAX_BLOCK_SIZE,
  MAX_FRAME_HEADER,
  ZSTD_MAGIC,
} from "./frame-header.js";
import { ZstdDecodeStream } from "./libzstd.js";
import { decodeSeekTable, decodeSeekTableFooter, SEEK_TABLE_FOOTER, seekTableSize } from "./seek-table.js";

export interface ZstdIndex {
  frames: FrameTable;
  /** How the index was found. */
  from: "seek table" | "frame headers";
  /** The seek table has checksums (each frame's `detail`). */
  checksums: boolean;
}

/** Frame `tag` bit: the frame ends with its own content checksum. */
export const HAS_CHECKSUM = 1;

const CACHE_NAME = "zstd-frames";
const CACHE_MAGIC = 0x32585a50; // "PZX2"

/**
 * The most bytes `compressedSize` bytes of zstd can decode to: every block
 * takes at least 4 bytes (a header and one RLE byte) for at most 128 KiB.
 */
export function mostDecodedBytes(compressedSize: number): number {
  return Math.ceil(compressedSize / (BLOCK_HEADER + 1)) * MAX_BLOCK_SIZE;
}

export async function readZstdIndex(below: BlockSource, context: ContainerContext): Promise<ZstdIndex> {
  const fromTable = await readSeekTable(below);
  if (fromTable) return fromTable;
  const cached = context.indexCache ? decodeCachedIndex(await context.indexCache.load(CACHE_NAME), below) : undefined;
  if (cached) return { frames: cached, from: "frame headers", checksums: false };
  const { frames } = await scanFrames(below, { sizeOf: (f) => learnSize(below, f) });
  await context.indexCache?.save(CACHE_NAME, encodeCachedIndex(frames));
  return { frames, from: "frame headers", checksums: false };
}

export async function readSeekTable(below: BlockSource): Promise<ZstdIndex | undefined> {
  if (below.size < 8 + SEEK_TABLE_FOOTER) return undefined;
  const footer = decodeSeekTableFooter(await below.read(below.size - SEEK_TABLE_FOOTER, SEEK_TABLE_FOOTER));
  if (footer === null) return undefined;
  const corrupt = (why: string) => new CorruptImageError(`${below.name}: corrupt zstd seek table: ${why}`);
  if (typeof footer === "string") throw corrupt(footer);
  if (footer.frames > MAX_FRAMES) throw new UnsupportedError(`${below.name}: the zstd seek table lists ${footer.frames} frames; platter indexes up to ${MAX_FRAMES}`);
  const tableSize = seekTableSize(footer);
  if (tableSize > below.size) throw corrupt(`its ${footer.frames} entries need ${tableSize} bytes, the file has ${below.size}`);
  const tableStart = below.size - tableSize;
  const entries = decodeSeekTable(await below.read(tableStart, tableSize), footer);
  if (typeof entries === "string") throw corrupt(entries);
  const frames = new FrameTable(`${below.name}: zstd frames`);
  let offset = 0;
  for (let i = 0; i < footer.frames; i++) {
    const compressedSize = entries.compressedSizes[i] as number;
    const size = entries.decompressedSizes[i] as number;
    if (compressedSize === 0) throw corrupt(`frame ${i} is 0 bytes long`);
    if (offset + compressedSize > tableStart) {
      throw corrupt(`frame ${i} (${compressedSize} bytes at offset ${offset}) runs past the start of the seek table at ${tableStart}`);
    }
    if (size > mostDecodedBytes(compressedSize)) {
      throw corrupt(`frame ${i} at offset ${offset} claims ${size} bytes from ${compressedSize} compressed bytes, more than zstd can encode in them`);
    }
    frames.add(offset, compressedSize, size, entries.checksums ? (entries.checksums[i] as number) : Number.NaN);
    offset += compressedSize;
  }
  if (offset !== tableStart) throw corrupt(`its ${footer.frames} frames cover ${offset} bytes, but ${tableStart} come before the table`);
  return { frames, from: "seek table", checksums: footer.hasChecksums };
}

/** What a frame's headers say of it, for a frame that does not give its content size. */
export interface UnsizedFrame {
  offset: number;
  compressedSize: number;
  windowSize: number;
}

export interface ScanOptions {
  /** Where an interrupted write ends, rather than a CorruptImageError for a frame cut short. */
  stopAtCut?: boolean;
  /** The content size of a frame whose header leaves it out (decode it, or refuse). */
  sizeOf: (frame: UnsizedFrame) => Promise<number>;
}

/**
 * The frames of a zstd file from their headers, block by block. A frame cut
 * short is a CorruptImageError, or, with `stopAtCut`, where the scan ends
 * (`end`: where the last whole frame ends). A frame's `tag` says whether it
 * has its own checksum (HAS_CHECKSUM).
 */
export async function scanFrames(below: BlockSource, options: ScanOptions): Promise<{ frames: FrameTable; end: number }> {
  const reader = new WindowReader(below);
  const size = below.size;
  const frames = new FrameTable(`${below.name}: zstd frames`);
  const cut = (what: string, at: number, pos: number) => {
    if (options.stopAtCut) return { frames, end: pos };
    throw new CorruptImageError(`${below.name}: truncated zstd file: ${what} at offset ${at} runs past the end (${size} bytes)`);
  };
  for (let pos = 0; pos < size; ) {
    const head = await reader.bytes(pos, MAX_FRAME_HEADER);
    if (head.length < 4) {
      if (options.stopAtCut) return { frames, end: pos };
      throw new CorruptImageError(`${below.name}: corrupt zstd file: ${head.length} stray bytes at offset ${pos} after the last frame`);
    }
    const magic = head.readUInt32LE(0);
    if (isSkippableMagic(magic)) {
      if (head.length < 8) return cut("skippable frame", pos, pos);
      const end = pos + 8 + head.readUInt32LE(4);
      if (end > size) return cut("skippable frame", pos, pos);
      frames.add(pos, end - pos, 0);
      pos = end;
      continue;
    }
    if (magic !== ZSTD_MAGIC) {
      throw new CorruptImageError(`${below.name}: corrupt zstd file: no frame at offset ${pos} (magic 0x${magic.toString(16).padStart(8, "0")})`);
    }
    const header = decodeFrameHeader(head);
    if (header === "truncated frame header") return cut("frame header", pos, pos);
    if (typeof header === "string") throw new CorruptImageError(`${below.name}: corrupt zstd frame at offset ${pos}: ${header}`);
    if (header.dictionaryId !== 0) {
      throw new UnsupportedError(`${below.name}: zstd frame at offset ${pos} needs dictionary ${header.dictionaryId}, which platter does not have`);
    }
    let at = pos + header.headerSize;
    let blocks = 0;
    for (let last = false; !last; ) {
      const bytes = await reader.bytes(at, BLOCK_HEADER);
      if (bytes.length < BLOCK_HEADER) return cut(`block ${blocks} of the frame at offset ${pos}`, at, pos);
      const block = decodeBlockHeader(bytes, 0);
      if (block.type === "reserved") throw new CorruptImageError(`${below.name}: corrupt zstd frame at offset ${pos}: block at offset ${at} has the reserved type`);
      if (block.size > MAX_BLOCK_SIZE) {
        throw new CorruptImageError(`${below.name}: corrupt zstd frame at offset ${pos}: block at offset ${at} claims ${block.size} bytes (at most ${MAX_BLOCK_SIZE})`);
      }
      if (at + BLOCK_HEADER + block.contentBytes > size) return cut(`block ${blocks} of the frame at offset ${pos}`, at, pos);
      at += BLOCK_HEADER + block.contentBytes;
      blocks++;
      last = block.last;
    }
    if (header.hasChecksum) {
      if (at + CHECKSUM_SIZE > size) return cut(`the checksum of the frame at offset ${pos}`, at, pos);
      at += CHECKSUM_SIZE;
    }
    if (header.contentSize !== undefined && header.contentSize > blocks * MAX_BLOCK_SIZE) {
      throw new CorruptImageError(
        `${below.name}: corrupt zstd frame at offset ${pos}: its header claims ${header.contentSize} bytes, its ${blocks} blocks hold at most ${blocks * MAX_BLOCK_SIZE}`,
      );
    }
    const frameSize = header.contentSize ?? (await options.sizeOf({ offset: pos, compressedSize: at - pos, windowSize: header.windowSize }));
    frames.add(pos, at - pos, frameSize, Number.NaN, header.hasChecksum ? HAS_CHECKSUM : 0);
    pos = at;
  }
  return { frames, end: size };
}

/** Decode a frame that does not declare its size, counting its bytes. */
async function learnSize(below: BlockSource, { offset, compressedSize, windowSize }: UnsizedFrame): Promise<number> {
  if (windowSize > 2 ** WINDOW_LOG_MAX) {
    throw new UnsupportedError(
      `${below.name}: zstd frame at offset ${offset} needs a ${Math.round(windowSize / 2 ** 20)} MiB window (zstd --long=${Math.ceil(Math.log2(windowSize))}); platter decodes windows up to ${2 ** (WINDOW_LOG_MAX - 20)} MiB: decompress it with zstd -d --long=31`,
    );
  }
  const decoder = new ZstdDecodeStream(WINDOW_LOG_MAX);
  const input = new CompressedInput(below, offset, compressedSize);
  const scratch = Buffer.allocUnsafe(1 << 20);
  let total = 0;
  try {
    for (let chunk = await input.next(); chunk; chunk = await input.next()) {
      for (let pos = 0; ; ) {
        const step = await decoder.step(chunk, pos, scratch, 0);
        pos += step.consumed;
        total += step.produced;
        if (step.frameDone) return total;
        if (pos === chunk.length && step.produced < scratch.length) break;
      }
    }
  } catch (err) {
    throw zstdError(below.name, offset, err);
  } finally {
    decoder.close();
  }
  throw new CorruptImageError(`${below.name}: corrupt zstd frame at offset ${offset}: its blocks end before its data does`);
}

/** The cached index: magic, count, then offset, compressed size, size per frame (float64: exact below 2^53), then tags. */
function encodeCachedIndex(frames: FrameTable): Buffer {
  const n = frames.length;
  const out = Buffer.alloc(8 + n * 25);
  out.writeUInt32LE(CACHE_MAGIC, 0);
  out.writeUInt32LE(n, 4);
  for (const f of frames) {
    out.writeDoubleLE(f.offset, 8 + f.index * 24);
    out.writeDoubleLE(f.compressedSize, 16 + f.index * 24);
    out.writeDoubleLE(f.size, 24 + f.index * 24);
    out[8 + n * 24 + f.index] = f.tag;
  }
  return out;
}

/** A cached index, if it is one and fits this file; anything else is ignored (and rebuilt). */
function decodeCachedIndex(data: Buffer | undefined, below: BlockSource): FrameTable | undefined {
  if (!data || data.length < 8 || data.readUInt32LE(0) !== CACHE_MAGIC) return undefined;
  const count = data.readUInt32LE(4);
  if (count > MAX_FRAMES || data.length !== 8 + count * 25) return undefined;
  const frames = new FrameTable(`${below.name}: zstd frames`);
  let offset = 0;
  for (let i = 0; i < count; i++) {
    const at = data.readDoubleLE(8 + i * 24);
    const compressedSize = data.readDoubleLE(16 + i * 24);
    const size = data.readDoubleLE(24 + i * 24);
    if (at !== offset || !Number.isSafeInteger(compressedSize) || compressedSize <= 0 || !Number.isSafeInteger(size) || size < 0) return undefined;
    if (size > mostDecodedBytes(compressedSize)) return undefined;
    frames.add(offset, compressedSize, size, Number.NaN, data[8 + count * 24 + i] as number);
    offset += compressedSize;
  }
  return offset === below.size ? frames : undefined;
}
