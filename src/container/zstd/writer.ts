/**
 * Writing .zst images in the seekable format: frames of FRAME_SIZE bytes,
 * each with its content size and checksum, then the seek table, whose
 * checksum for each frame is the frame's own (the low 32 bits of XXH64 of its
 * bytes, which libzstd computes anyway). zstd -t, -d and -l read it as any
 * multi-frame file; platter reads it with random access.
 */
import { UnsupportedError, UsageError } from "../../errors.js";
import { FileSource } from "../../io/file-source.js";
import type { ContainerSink, ContainerWriter, WriterOptions } from "../format.js";
import { FrameTable, type Frame } from "../frame-table.js";
import { PieceSink, resumePieces, type EncodedPiece, type FileEnd, type PieceEncoder, type ResumePoint } from "../piece-sink.js";
import { ZstdFrameCodec } from "./frame-codec.js";
import { CHECKSUM_SIZE } from "./frame-header.js";
import { HAS_CHECKSUM, readSeekTable, scanFrames } from "./frame-index.js";
import { compressBound, compressFrame, levelRange, requireZstd } from "./libzstd.js";
import { encodeSeekTable } from "./seek-table.js";

/**
 * Image bytes per frame. A random read decodes its whole frame, so smaller
 * frames read faster; they would cost ratio, but at level 3 zstd's window is
 * a few MiB anyway: on a mixed disk image 1 MiB frames came out 1% smaller
 * than `zstd -3` of the whole file, 2 and 4 MiB frames 0.6 and 0.2% smaller.
 */
export const FRAME_SIZE = 1 << 20;
/** zstd's own default. */
const DEFAULT_LEVEL = 3;

class ZstdFrameEncoder implements PieceEncoder {
  readonly format = "zstd";
  readonly pieceSize = FRAME_SIZE;
  readonly maxEncodedSize = compressBound(FRAME_SIZE);
  readonly indexed = true;

  constructor(private readonly level: number) {}

  header(): Buffer {
    return Buffer.alloc(0);
  }

  async encode(data: Buffer, out: Buffer): Promise<EncodedPiece> {
    const length = await compressFrame(data, out, { level: this.level, checksum: true });
    return { length, detail: out.readUInt32LE(length - CHECKSUM_SIZE) };
  }

  trailer({ pieces }: FileEnd): Buffer {
    const frames = pieces as FrameTable;
    const entries = function* () {
      for (const f of frames) yield { compressedSize: f.compressedSize, decompressedSize: f.size, checksum: f.detail };
    };
    return encodeSeekTable(entries(), frames.length, true);
  }
}

function encoderFor(options: WriterOptions): ZstdFrameEncoder {
  requireZstd();
  const [min, max] = levelRange();
  const level = options.level ?? DEFAULT_LEVEL;
  if (!Number.isInteger(level) || level < min || level > max || level === 0) {
    throw new UsageError(`--level ${level}: zstd levels go from 1 to ${max} (and down to ${min} for the fast ones)`);
  }
  return new ZstdFrameEncoder(level);
}

export const zstdWriter: ContainerWriter = {
  name: "zstd",
  extensions: [".zst"],

  async create(path: string, options: WriterOptions): Promise<ContainerSink> {
    return PieceSink.create(path, encoderFor(options), options);
  },

  async resume(path: string, options: WriterOptions): Promise<{ sink: ContainerSink; committed: number }> {
    return resumePieces(path, encoderFor(options), options, wholeFrames);
  },
};

/**
 * The frames of a .zst platter was writing, up to the last whole one: from
 * its seek table when it was finished, else from the frame headers, the
 * last frame checked by decoding it (a write cut short ends it).
 */
async function wholeFrames(file: FileSource): Promise<ResumePoint> {
  const notOurs = (why: string) =>
    new UnsupportedError(`${file.name}: cannot resume writing it: ${why}; only a .zst platter was writing can be resumed`);
  const table = await readSeekTable(file);
  if (table) {
    if (!table.checksums) throw notOurs("its seek table has no checksums");
    return resumeAfter(table.frames);
  }
  const { frames: scanned } = await scanFrames(file, {
    stopAtCut: true,
    sizeOf: async (f) => {
      throw notOurs(`the frame at offset ${f.offset} does not record its size`);
    },
  });
  // The seek table's checksum of each frame is the one at its end.
  const frames = new FrameTable(`${file.name}: zstd frames`);
  for (const f of scanned) {
    if (!(f.tag & HAS_CHECKSUM) || f.size === 0) throw notOurs(`the frame at offset ${f.offset} has no checksum`);
    if (f.size > FRAME_SIZE) throw notOurs(`the frame at offset ${f.offset} holds ${f.size} bytes, more than platter puts in one`);
    const tail = await file.read(f.offset + f.compressedSize - CHECKSUM_SIZE, CHECKSUM_SIZE);
    frames.add(f.offset, f.compressedSize, f.size, tail.readUInt32LE(0));
  }
  const last = frames.length ? frames.get(frames.length - 1) : undefined;
  if (last && !(await decodes(file, last))) frames.truncate(frames.length - 1);
  return resumeAfter(frames);
}

/** Go on after the last frame. */
function resumeAfter(frames: FrameTable): ResumePoint {
  return { fileOffset: frames.endOffset(0), committed: frames.decodedSize, pieces: frames };
}

async function decodes(file: FileSource, frame: Frame): Promise<boolean> {
  try {
    const input = await file.read(frame.offset, frame.compressedSize);
    await new ZstdFrameCodec(file.name).decodeWhole(frame, input, Buffer.allocUnsafe(frame.size));
    return true;
  } catch {
    return false;
  }
}
