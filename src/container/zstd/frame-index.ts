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
import { CompressedInput } from "../framed-source.js";
import { WindowReader } from "../window-reader.js";
import { zstdError, WINDOW_LOG_MAX, type ZstdFrame } from "./frame-codec.js";
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
  frames: ZstdFrame[];
  /** How the index was found. */
  from: "seek table" | "frame headers";
  /** The seek table has checksums. */
  checksums: boolean;
}

const CACHE_NAME = "zstd-frames";
const CACHE_MAGIC = 0x31585a50; // "PZX1"

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
  const cached = context.indexCache ? decodeCachedIndex(await context.indexCache.load(CACHE_NAME), below.size) : undefined;
  if (cached) return { frames: cached, from: "frame headers", checksums: false };
  const frames = await walkFrames(below);
  await context.indexCache?.save(CACHE_NAME, encodeCachedIndex(frames));
  return { frames, from: "frame headers", checksums: false };
}

export async function readSeekTable(below: BlockSource): Promise<ZstdIndex | undefined> {
  if (below.size < 8 + SEEK_TABLE_FOOTER) return undefined;
  const footer = decodeSeekTableFooter(await below.read(below.size - SEEK_TABLE_FOOTER, SEEK_TABLE_FOOTER));
  if (footer === null) return undefined;
  const corrupt = (why: string) => new CorruptImageError(`${below.name}: corrupt zstd seek table: ${why}`);
  if (typeof footer === "string") throw corrupt(footer);
  const tableSize = seekTableSize(footer);
  if (tableSize > below.size) throw corrupt(`its ${footer.frames} entries need ${tableSize} bytes, the file has ${below.size}`);
  const tableStart = below.size - tableSize;
  const entries = decodeSeekTable(await below.read(tableStart, tableSize), footer);
  if (typeof entries === "string") throw corrupt(entries);
  const frames: ZstdFrame[] = [];
  let offset = 0;
  let start = 0;
  for (const [i, e] of entries.entries()) {
    if (e.compressedSize === 0) throw corrupt(`frame ${i} is 0 bytes long`);
    if (offset + e.compressedSize > tableStart) {
      throw corrupt(`frame ${i} (${e.compressedSize} bytes at offset ${offset}) runs past the start of the seek table at ${tableStart}`);
    }
    if (e.decompressedSize > mostDecodedBytes(e.compressedSize)) {
      throw corrupt(`frame ${i} at offset ${offset} claims ${e.decompressedSize} bytes from ${e.compressedSize} compressed bytes, more than zstd can encode in them`);
    }
    frames.push({ offset, compressedSize: e.compressedSize, start, size: e.decompressedSize, checksum: e.checksum });
    offset += e.compressedSize;
    start += e.decompressedSize;
  }
  if (offset !== tableStart) throw corrupt(`its ${entries.length} frames cover ${offset} bytes, but ${tableStart} come before the table`);
  return { frames, from: "seek table", checksums: footer.hasChecksums };
}

/** A frame as its headers describe it, before any decoding. */
export interface ScannedFrame {
  offset: number;
  compressedSize: number;
  /** Frame_Content_Size (0 for a skippable frame); undefined when the header leaves it out. */
  size: number | undefined;
  windowSize: number;
  /** The 4-byte checksum at its end, when it has one. */
  checksum: boolean;
}

/**
 * The frames of a zstd file from their headers, block by block. A frame cut
 * short is a CorruptImageError, or, with `stopAtCut`, where the scan ends
 * (an interrupted write: `end` is where the last whole frame ends).
 */
export async function scanFrames(below: BlockSource, stopAtCut = false): Promise<{ frames: ScannedFrame[]; end: number }> {
  const reader = new WindowReader(below);
  const size = below.size;
  const frames: ScannedFrame[] = [];
  const cut = (what: string, at: number, pos: number) => {
    if (stopAtCut) return { frames, end: pos };
    throw new CorruptImageError(`${below.name}: truncated zstd file: ${what} at offset ${at} runs past the end (${size} bytes)`);
  };
  for (let pos = 0; pos < size; ) {
    const head = await reader.bytes(pos, MAX_FRAME_HEADER);
    if (head.length < 4) {
      if (stopAtCut) return { frames, end: pos };
      throw new CorruptImageError(`${below.name}: corrupt zstd file: ${head.length} stray bytes at offset ${pos} after the last frame`);
    }
    const magic = head.readUInt32LE(0);
    if (isSkippableMagic(magic)) {
      if (head.length < 8) return cut("skippable frame", pos, pos);
      const end = pos + 8 + head.readUInt32LE(4);
      if (end > size) return cut("skippable frame", pos, pos);
      frames.push({ offset: pos, compressedSize: end - pos, size: 0, windowSize: 0, checksum: false });
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
    frames.push({ offset: pos, compressedSize: at - pos, size: header.contentSize, windowSize: header.windowSize, checksum: header.hasChecksum });
    pos = at;
  }
  return { frames, end: size };
}

/** Every frame of the file; sizes a header leaves out are learned by decoding. */
async function walkFrames(below: BlockSource): Promise<ZstdFrame[]> {
  const { frames: scanned } = await scanFrames(below);
  const frames: ZstdFrame[] = [];
  let start = 0;
  for (const f of scanned) {
    const frameSize = f.size ?? (await learnSize(below, f.offset, f.compressedSize, f.windowSize));
    frames.push({ offset: f.offset, compressedSize: f.compressedSize, start, size: frameSize });
    start += frameSize;
  }
  return frames;
}

/** Decode a frame that does not declare its size, counting its bytes. */
async function learnSize(below: BlockSource, offset: number, compressedSize: number, window: number): Promise<number> {
  if (window > 2 ** WINDOW_LOG_MAX) {
    throw new UnsupportedError(
      `${below.name}: zstd frame at offset ${offset} needs a ${Math.round(window / 2 ** 20)} MiB window (zstd --long=${Math.ceil(Math.log2(window))}); platter decodes windows up to ${2 ** (WINDOW_LOG_MAX - 20)} MiB: decompress it with zstd -d --long=31`,
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

/** The cached index: magic, count, then offset, compressed size, size per frame (float64: exact below 2^53). */
function encodeCachedIndex(frames: readonly ZstdFrame[]): Buffer {
  const out = Buffer.alloc(8 + frames.length * 24);
  out.writeUInt32LE(CACHE_MAGIC, 0);
  out.writeUInt32LE(frames.length, 4);
  frames.forEach((f, i) => {
    out.writeDoubleLE(f.offset, 8 + i * 24);
    out.writeDoubleLE(f.compressedSize, 16 + i * 24);
    out.writeDoubleLE(f.size, 24 + i * 24);
  });
  return out;
}

/** A cached index, if it is one and fits this file; anything else is ignored (and rebuilt). */
function decodeCachedIndex(data: Buffer | undefined, fileSize: number): ZstdFrame[] | undefined {
  if (!data || data.length < 8 || data.readUInt32LE(0) !== CACHE_MAGIC) return undefined;
  const count = data.readUInt32LE(4);
  if (data.length !== 8 + count * 24) return undefined;
  const frames: ZstdFrame[] = [];
  let offset = 0;
  let start = 0;
  for (let i = 0; i < count; i++) {
    const at = data.readDoubleLE(8 + i * 24);
    const compressedSize = data.readDoubleLE(16 + i * 24);
    const size = data.readDoubleLE(24 + i * 24);
    if (at !== offset || !Number.isSafeInteger(compressedSize) || compressedSize <= 0 || !Number.isSafeInteger(size) || size < 0) return undefined;
    if (size > mostDecodedBytes(compressedSize)) return undefined;
    frames.push({ offset, compressedSize, start, size });
    offset += compressedSize;
    start += size;
  }
  return offset === fileSize ? frames : undefined;
}
