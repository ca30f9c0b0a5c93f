/**
 * Writing .bz2 images the way pbzip2 does: the image cut into chunks of
 * level x 100 kB (900 kB at the default level 9), each compressed by libbz2
 * as a stream of its own (so each starts byte-aligned and decodes alone), on
 * every core; then platter's trailer (platter-trailer.ts) with the chunk and
 * image sizes, so platter opens the file without decoding it. `bzip2 -d`,
 * `pbzip2 -d` and every other decoder read it as one image.
 */
import { CorruptImageError, UsageError } from "../../errors.js";
import type { FileSource } from "../../io/file-source.js";
import type { BlockSource } from "../../io/block-source.js";
import type { ContainerSink, ContainerWriter, WriterOptions } from "../format.js";
import { PieceSink, resumePieces, type PieceEncoder, type ResumePoint } from "../piece-sink.js";
import { decodeCandidate } from "./index-build.js";
import { compressBound, compressStream, requireLibbz2 } from "./libbz2.js";
import { decodePlatterTrailer, encodePlatterTrailer, TRAILER_BYTES } from "./platter-trailer.js";
import { streamStarts } from "./stream-scan.js";

const DEFAULT_LEVEL = 9;

function bzip2Encoder(options: WriterOptions): PieceEncoder {
  const level = options.level ?? DEFAULT_LEVEL;
  if (!Number.isInteger(level) || level < 1 || level > 9) throw new UsageError(`bzip2 level must be 1 to 9, not ${String(level)}`);
  const chunkSize = level * 100000;
  return {
    format: "bzip2",
    pieceSize: chunkSize,
    maxEncodedSize: compressBound(chunkSize),
    indexed: false,
    header: () => Buffer.alloc(0),
    encode: async (chunk, out) => ({ length: await compressStream(chunk, level, out) }),
    trailer: ({ imageSize, complete }) => (complete ? encodePlatterTrailer({ chunkSize, imageSize }) : undefined),
  };
}

export const bzip2Writer: ContainerWriter = {
  name: "bzip2",
  extensions: [".bz2"],
  async create(path: string, options: WriterOptions): Promise<ContainerSink> {
    requireLibbz2();
    return PieceSink.create(path, bzip2Encoder(options), options);
  },
  resume: resumeBzip2,
};

/**
 * Cut a .bz2 platter was writing back to its last whole chunk and go on from
 * there. With its trailer (a finished file), the trailer goes, and a short
 * last chunk with it; without (an interrupted one), the last stream stays if
 * it decodes to a whole chunk.
 */
async function resumeBzip2(path: string, options: WriterOptions): Promise<{ sink: ContainerSink; committed: number }> {
  requireLibbz2();
  const encoder = bzip2Encoder(options);
  const wholeChunks = async (file: FileSource): Promise<ResumePoint> => {
    const cut = await resumePoint(file, encoder.pieceSize, file.size);
    return { fileOffset: cut.fileOffset, committed: cut.chunks * encoder.pieceSize };
  };
  return resumePieces(path, encoder, options, wholeChunks, "create");
}

async function resumePoint(source: BlockSource, chunkSize: number, size: number): Promise<{ fileOffset: number; chunks: number }> {
  if (size === 0) return { fileOffset: 0, chunks: 0 };
  const trailer = size >= TRAILER_BYTES ? decodePlatterTrailer(await source.read(size - TRAILER_BYTES, TRAILER_BYTES)) : undefined;
  if (trailer) {
    if (trailer.chunkSize !== chunkSize) {
      throw new UsageError(`${source.name} was written in chunks of ${trailer.chunkSize} bytes (level ${trailer.chunkSize / 100000}); resume it at that level`);
    }
    const starts = await streamStarts(source, size - TRAILER_BYTES);
    if (starts.length !== Math.ceil(trailer.imageSize / chunkSize)) throw new CorruptImageError(`${source.name}: its streams do not match its trailer`);
    const whole = Math.floor(trailer.imageSize / chunkSize);
    return { fileOffset: starts[whole]?.start ?? size - TRAILER_BYTES, chunks: whole };
  }
  const starts = await streamStarts(source, size);
  if (starts.length === 0) throw new UsageError(`${source.name}: not a .bz2 platter wrote, so it cannot be resumed`);
  /** What stream i decodes to: a whole chunk, less (the short last one, or cut short), or more (not platter's). */
  const streamHolds = async (i: number): Promise<"chunk" | "less" | "more"> => {
    const from = (starts[i] as { start: number }).start;
    const to = starts[i + 1]?.start ?? size;
    // One byte of room more than a chunk: a whole chunk cut before its end marker then shows as cut, not as too large.
    const decoded = await decodeCandidate(source, { bitStart: from * 8, bitEnd: to * 8, level: 9, whole: true }, chunkSize + 1);
    if (decoded === "too large") return "more";
    return typeof decoded !== "string" && decoded.length === chunkSize ? "chunk" : "less";
  };
  const notOurs = (which: string) =>
    new UsageError(`${source.name}: its ${which} stream does not hold ${chunkSize} bytes: not a .bz2 platter wrote at this level, so it cannot be resumed`);
  if (starts.length > 1 && (await streamHolds(0)) !== "chunk") throw notOurs("first");
  const last = starts.length - 1;
  const holds = await streamHolds(last);
  if (holds === "more") throw notOurs("last");
  if (holds === "chunk") return { fileOffset: size, chunks: starts.length };
  return { fileOffset: (starts[last] as { start: number }).start, chunks: last };
}
