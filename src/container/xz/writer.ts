/**
 * Writing .xz images as one stream of many blocks: BLOCK_SIZE bytes each,
 * compressed by liblzma (LZMA2 at the preset, CRC64) on every core, each
 * block header recording its sizes (so xz -d -T0 decodes them in parallel
 * too), then the index and the stream footer. xz -t and xz -l accept it;
 * platter reads it back a block at a time.
 */
import { UnsupportedError, UsageError } from "../../errors.js";
import { FileSource } from "../../io/file-source.js";
import type { ContainerSink, ContainerWriter, WriterOptions } from "../format.js";
import { FrameTable, type Frame } from "../frame-table.js";
import { PieceSink, resumePieces, writerThreads, type EncodedPiece, type FileEnd, type PieceEncoder, type ResumePoint } from "../piece-sink.js";
import { XzBlockCodec } from "./block-codec.js";
import { decodeBlockHeader, encodeLzma2BlockHeader } from "./block-header.js";
import { padded, readXzBlocks } from "./block-list.js";
import { encodeIndexField } from "./index-field.js";
import { blockBound, CHECK_CRC64, crc64, Lzma2Encoder, requireLzma } from "./liblzma.js";
import { encodeStreamFooter } from "./stream-footer.js";
import { checkSize, decodeStreamHeader, encodeStreamHeader, STREAM_HEADER_SIZE } from "./stream-header.js";

/**
 * Image bytes per block. A block starts with an empty dictionary, so
 * smaller blocks cost ratio (on a mixed disk image, at -6: 2% more than
 * xz -T0's 24 MiB blocks at 4 MiB, 6% at 1 MiB) and larger ones cost each
 * random read, which decodes its whole block.
 */
export const BLOCK_SIZE = 4 << 20;
/** xz's own default preset. */
const DEFAULT_LEVEL = 6;
const CHECK = CHECK_CRC64;
/** Memory all encoders together may take: two at -6 (47 MiB each), more at lower levels. */
const ENCODER_MEMORY = 100 << 20;
/** Room left before the LZMA2 data for the block header: 1+1 bytes, two 9-byte sizes, 3 bytes of filter, CRC32. */
const MAX_HEADER = 28;

class XzBlockEncoder implements PieceEncoder {
  readonly format = "xz";
  readonly pieceSize = BLOCK_SIZE;
  readonly maxEncodedSize = blockBound(BLOCK_SIZE);
  readonly indexed = true;
  /** One LZMA2 encoder per compression running at once, each keeping its memory from block to block. */
  private readonly idle: Lzma2Encoder[] = [];

  constructor(private readonly preset: number) {}

  header(): Buffer {
    return encodeStreamHeader(CHECK);
  }

  /**
   * The block: its header (both sizes, so xz -T0 decodes blocks in parallel
   * too), the LZMA2 data, padding to 4 bytes, and the CRC64 of `data`. The
   * data is compressed past the room a header can take, then moved up to it.
   */
  async encode(data: Buffer, out: Buffer): Promise<EncodedPiece> {
    const encoder = this.idle.pop() ?? new Lzma2Encoder(this.preset, BLOCK_SIZE);
    let compressed: number;
    let check: Buffer;
    try {
      [compressed, check] = await Promise.all([encoder.encode(data, out.subarray(MAX_HEADER)), crc64(data)]);
    } finally {
      this.idle.push(encoder);
    }
    const header = encodeLzma2BlockHeader(compressed, data.length, encoder.dictionarySize);
    out.copy(out, header.length, MAX_HEADER, MAX_HEADER + compressed);
    header.copy(out);
    const unpaddedSize = header.length + compressed + check.length;
    const length = padded(unpaddedSize);
    out.fill(0, header.length + compressed, length - check.length);
    check.copy(out, length - check.length);
    return { length, detail: unpaddedSize };
  }

  release(): void {
    for (const encoder of this.idle.splice(0)) encoder.close();
  }

  trailer({ pieces }: FileEnd): Buffer {
    const frames = pieces as FrameTable;
    const records = function* () {
      for (const f of frames) yield { unpaddedSize: f.detail, uncompressedSize: f.size };
    };
    const index = encodeIndexField(records(), frames.length);
    return Buffer.concat([index, encodeStreamFooter(index.length, CHECK)]);
  }
}

/** The encoder, and the options with as many threads as encoders fit in ENCODER_MEMORY. */
function settings(options: WriterOptions): { encoder: XzBlockEncoder; options: WriterOptions } {
  requireLzma();
  const level = options.level ?? DEFAULT_LEVEL;
  if (!Number.isInteger(level) || level < 0 || level > 9) throw new UsageError(`--level ${level}: xz levels go from 0 to 9`);
  const threads = writerThreads(options);
  // Each thread's encoder keeps its tables: as many as ENCODER_MEMORY allows, so memory stays bounded on any machine.
  const probe = new Lzma2Encoder(level, BLOCK_SIZE);
  const affordable = Math.max(1, Math.floor(ENCODER_MEMORY / probe.memoryUsage));
  return { encoder: new XzBlockEncoder(level), options: { ...options, threads: Math.min(threads, affordable) } };
}

export const xzWriter: ContainerWriter = {
  name: "xz",
  extensions: [".xz"],

  async create(path: string, options: WriterOptions): Promise<ContainerSink> {
    const { encoder, options: sinkOptions } = settings(options);
    return PieceSink.create(path, encoder, sinkOptions);
  },

  async resume(path: string, options: WriterOptions): Promise<{ sink: ContainerSink; committed: number }> {
    const { encoder, options: sinkOptions } = settings(options);
    return resumePieces(path, encoder, sinkOptions, wholeBlocks);
  },
};

/**
 * The blocks of an .xz platter was writing, up to the last whole one: from
 * its index when it was finished, else block header by block header, the
 * last block checked by decoding it (a write cut short ends it).
 */
async function wholeBlocks(file: FileSource): Promise<ResumePoint> {
  const notOurs = (why: string) =>
    new UnsupportedError(`${file.name}: cannot resume writing it: ${why}; only an .xz platter was writing can be resumed`);
  const blocks = new FrameTable(`${file.name}: xz blocks`);
  if (file.size < STREAM_HEADER_SIZE) return { fileOffset: 0, committed: 0, pieces: blocks };
  const check = decodeStreamHeader(await file.read(0, STREAM_HEADER_SIZE));
  if (typeof check === "string") throw notOurs(check);
  if (check !== CHECK) throw notOurs(`its blocks have ${check === 0 ? "no" : "another"} check`);
  const finished = await readXzBlocks(file).catch(() => undefined);
  if (finished) {
    if (finished.streams !== 1) throw notOurs(`it holds ${finished.streams} streams`);
    return resumeAfter(finished.blocks);
  }
  for (let pos = STREAM_HEADER_SIZE; pos < file.size; ) {
    const header = decodeBlockHeader(await file.read(pos, Math.min(1024, file.size - pos)));
    if (typeof header === "string") break; // cut inside a header, or the index begins
    if (header.compressedSize === undefined || header.uncompressedSize === undefined) throw notOurs(`the block at offset ${pos} does not record its sizes`);
    if (header.uncompressedSize > BLOCK_SIZE) throw notOurs(`the block at offset ${pos} holds ${header.uncompressedSize} bytes, more than platter puts in one`);
    const unpaddedSize = header.headerSize + header.compressedSize + checkSize(CHECK);
    if (pos + padded(unpaddedSize) > file.size) break;
    blocks.add(pos, padded(unpaddedSize), header.uncompressedSize, unpaddedSize, CHECK);
    pos += padded(unpaddedSize);
  }
  const last = blocks.length ? blocks.get(blocks.length - 1) : undefined;
  if (last && !(await decodes(file, last))) blocks.truncate(blocks.length - 1);
  return resumeAfter(blocks);
}

/** Go on after the last block (just after the stream header when there is none). */
function resumeAfter(blocks: FrameTable): ResumePoint {
  return { fileOffset: blocks.endOffset(STREAM_HEADER_SIZE), committed: blocks.decodedSize, pieces: blocks };
}

async function decodes(file: FileSource, block: Frame): Promise<boolean> {
  try {
    await new XzBlockCodec(file.name, BLOCK_SIZE * 2).decodeWhole(block, await file.read(block.offset, block.compressedSize), Buffer.allocUnsafe(block.size));
    return true;
  } catch {
    return false;
  }
}
