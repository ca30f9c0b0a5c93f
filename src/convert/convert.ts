/**
 * convert: any image platter reads (raw, compressed, virtual disk) to any
 * format it writes. The bytes go through one ordered pipeline: reads ahead
 * of the writer (the output format compresses on its own workers), runs
 * the source knows to be zero (holes, unallocated clusters) and all-zero
 * chunks handed on as zeros, which every format stores cheaply. The output
 * is written to a temporary name beside DEST and renamed at the end: an
 * interrupted convert never leaves a DEST that looks complete.
 */
import { constants, promises as fsp } from "node:fs";
import { availableParallelism } from "node:os";
import { basename, dirname, join } from "node:path";
import { checkCaptureTargets } from "../io/device-safety.js";
import { InterruptedError, UsageError, ioError } from "../errors.js";
import { openImage, type OpenImageOptions } from "../image/open-image.js";
import type { ContainerName } from "../container/format.js";
import { type BlockSink, type BlockSource, dataRangesOf } from "../io/block-source.js";
import { FileSink } from "../io/file-sink.js";
import { isAllZero } from "../io/zeros.js";
import { BufferPool } from "../util/buffer-pool.js";
import { InFlight } from "../util/in-flight.js";
import { OrderedWindow } from "../util/ordered-window.js";
import { alignRanges } from "../util/ranges.js";
import { checkWriterFlags, chooseOutputFormat, type OutputFormat } from "./output-format.js";

/**
 * The largest span read and written at once. Direct writes take the largest
 * (each waits for the disk); elsewhere smaller spans cost less fresh memory
 * for the same speed (raw -> qcow2 1.36 -> 1.22 s, raw -> .zst 0.82 -> 0.75 s
 * with 2 MiB spans, here, where a page touched for the first time is slow).
 */
const DIRECT_CHUNK = 4 << 20;
const CHUNK = 2 << 20;
/** Data ranges are widened to whole 4 KiB blocks for the direct writes of a raw DEST (util/ranges.ts alignRanges). */
const RANGE_ALIGN = 4096;
/**
 * The widest run of zeros a span bridges: its bytes are read (filled with
 * zeros) to save a read and its thread switches. A one-cluster gap is the
 * common one (1,011 of 1,764 in the disk-like bench image); bridging up to
 * 256 KiB saved 350 more reads but filled twice the memory, no faster.
 */
const SPAN_GAP = 64 << 10;
/** Reads in flight ahead of the writer: a disk's queue. */
const READ_AHEAD = 4;
/**
 * Writes in flight to a random-access DEST: a direct write waits for the
 * disk, which takes several at once (640 MiB in 384 KiB writes: 0.79 s one
 * at a time, 0.59 s four at a time).
 */
const WRITES_IN_FLIGHT = 4;

/** How the copy is paced: reads in flight, writes in flight, and the largest span read and written at once. */
interface Pipeline {
  readAhead: number;
  writes: number;
  chunk: number;
}

/**
 * How far ahead to read, and how many writes to keep going. Each span of a
 * compressed source is decoded where it is read, so one read per core keeps
 * every core decoding; more only holds more decoded memory (on this VM every
 * page first touched costs: 15,000 -> 12,000 page faults and 0.64 -> 0.59 s
 * turning 256 MiB of .zst back into raw with two instead of four each way).
 * Two 4 MiB direct writes keep the disk as busy as four.
 */
function pipelineFor(compressed: boolean, sink: BlockSink): Pipeline {
  // At most eight: native calls run eight at a time (container/native-library.ts), and memory stays bounded.
  const readAhead = compressed ? Math.min(8, Math.max(2, availableParallelism())) : READ_AHEAD;
  const direct = sink instanceof FileSink && sink.writesDirect;
  // A compressed DEST takes the next write while the last one's pieces still compress, so its cores are not left idle
  // as each write ends (writing .gz, both cores busy 85% -> 93% of the time).
  const writes = sink.sequential ? (sink.overlapsWrites ? 2 : 1) : direct ? 2 : WRITES_IN_FLIGHT;
  return { readAhead, writes, chunk: direct ? DIRECT_CHUNK : CHUNK };
}

export interface ConvertOptions extends Pick<OpenImageOptions, "noBacking"> {
  source: string;
  dest: string;
  /** Output format name or extension; default: from DEST's extension, else raw. */
  to?: string;
  /** Raw output only: zero runs become holes. */
  sparse?: boolean;
  level?: number;
  threads?: number;
  /** Format-specific writer options (qcow2 compression, VHD type...). */
  writerOptions?: Record<string, unknown>;
  /** Replace an existing DEST. */
  force?: boolean;
  /** Stops the copy at the next chunk; convert then removes what it wrote and throws an InterruptedError. */
  signal?: AbortSignal;
  /** Which signal stopped it, for the exit code (default SIGINT). */
  interruptedBy?: () => NodeJS.Signals | undefined;
  onProgress?: (p: { done: number; total: number }) => void;
  onWarning?: (message: string) => void;
}

export interface ConvertResult {
  source: string;
  dest: string;
  /** The layers read, outermost first ("raw" when none), and the format written. */
  from: string[];
  to: string;
  /** Bytes of the disk image converted. */
  size: number;
  /** Bytes DEST takes as a file. */
  destSize: number;
  seconds: number;
}

/** A run of the image read at once: data `ranges` and the zeros between them. */
interface Span {
  offset: number;
  length: number;
  ranges: Array<[number, number]>;
}

/** A span's bytes, as read. */
type SpanData = { offset: number; data: Buffer; ranges: Array<[number, number]> };
/** One piece of the image, in order: a span's bytes, or a run of zeros. */
type Piece = SpanData | { offset: number; zeros: number };

export async function convertImage(options: ConvertOptions): Promise<ConvertResult> {
  const started = Date.now();
  const format = chooseOutputFormat(options.dest, options.to);
  checkWriterFlags(format, options);
  await checkDest(options);
  for (const w of await checkCaptureTargets(options.source, options.dest)) options.onWarning?.(w);
  const image = await openImage(options.source, { purpose: "converting", noBacking: options.noBacking, direct: "cold", onWarning: options.onWarning });
  const temp = join(dirname(options.dest), `.${basename(options.dest)}.platter-${process.pid}.tmp`);
  try {
    const size = image.source.size;
    const compressed = image.layers.some((layer) => COMPRESSED_STREAMS.has(layer.format));
    const sink = await createSink(format, temp, size, options, compressed);
    try {
      await copyImage(image.source, sink, options, pipelineFor(compressed, sink));
      await sink.setSize(size);
      await sink.flush();
    } finally {
      await sink.close();
    }
    await fsp.rename(temp, options.dest).catch((err: unknown) => {
      throw ioError(err, options.dest);
    });
    const destSize = (await fsp.stat(options.dest)).size;
    return {
      source: options.source,
      dest: options.dest,
      from: image.layers.length ? image.layers.map((l) => l.format) : ["raw"],
      to: format.name,
      size,
      destSize,
      seconds: (Date.now() - started) / 1000,
    };
  } catch (err) {
    await fsp.rm(temp, { force: true });
    throw err;
  } finally {
    await image.close();
  }
}

/** DEST is a new file, or an old one the user said to replace; never a device (that is restore's job). */
async function checkDest(options: ConvertOptions): Promise<void> {
  if (options.dest === "-") throw new UsageError("convert writes a file; DEST '-' (standard output) is not supported");
  let st;
  try {
    st = await fsp.stat(options.dest);
  } catch {
    try {
      await fsp.access(dirname(options.dest), constants.W_OK);
    } catch (err) {
      throw ioError(err, dirname(options.dest));
    }
    return;
  }
  if (st.isDirectory()) throw new UsageError(`${options.dest}: is a directory; name the image file to write`);
  if (!st.isFile()) throw new UsageError(`${options.dest}: is not a regular file; convert writes image files (write to a disk with platter restore)`);
  if (!options.force) throw new UsageError(`${options.dest} exists; add --force to replace it`);
}

/** Layers that keep every core decoding while they are read. */
const COMPRESSED_STREAMS: ReadonlySet<ContainerName> = new Set(["gzip", "xz", "zstd", "bzip2"]);

async function createSink(format: OutputFormat, path: string, size: number, options: ConvertOptions, decodesOnEveryCore: boolean): Promise<BlockSink> {
  if (format.name === "raw") {
    // From a virtual disk or a raw image, through the page cache as qemu-img writes: O_DIRECT writes
    // into a new file wait for the file system to allocate each piece (1 GiB from a qcow2: 2.1-2.5 s
    // direct, 1.65-1.7 s cached, the final fdatasync included; --sparse 1.56 -> 1.16 s). While a
    // compressed stream is decoded on every core, direct writes leave the cores to the decoder (the
    // page cache's copy cost more CPU than decoding .zst). Cached pages are dropped once on the disk.
    const direct = decodesOnEveryCore;
    return FileSink.open(path, { create: true, truncate: true, sparse: options.sparse, direct, dropCacheOnFlush: !direct });
  }
  if (options.sparse) throw new UsageError(`--sparse is for raw output; ${format.name} stores zero runs compactly by itself`);
  return (format as Exclude<OutputFormat, { name: "raw" }>).create(path, {
    size,
    level: options.level,
    threads: options.threads,
    destName: basename(options.dest),
    ...options.writerOptions,
  });
}

/**
 * The image in order: its data ranges gathered into spans of at most `chunk`
 * bytes (one read each, however many stretches of data and zeros a span
 * holds: a virtual disk's stored clusters are neighbours in its file), the
 * gaps between spans as zeros.
 */
function* pieces(ranges: Array<[number, number]>, size: number, chunk: number): Generator<Span | { offset: number; zeros: number }> {
  let pos = 0;
  let span: Span | undefined;
  for (const [start, length] of ranges) {
    for (let at = start; at < start + length; ) {
      if (!span || at >= span.offset + chunk || at - (span.offset + span.length) > SPAN_GAP) {
        if (span) yield span;
        if (at > pos) yield { offset: pos, zeros: at - pos };
        span = { offset: at, length: 0, ranges: [] };
      }
      const stop = Math.min(start + length, span.offset + chunk);
      span.ranges.push([at, stop - at]);
      span.length = stop - span.offset;
      pos = at = stop;
    }
  }
  if (span) yield span;
  if (pos < size) yield { offset: pos, zeros: size - pos };
}

async function copyImage(source: BlockSource, sink: BlockSink, options: ConvertOptions, { readAhead, writes: writesInFlight, chunk }: Pipeline): Promise<void> {
  const size = source.size;
  const ranges = alignRanges(await dataRangesOf(source, 0, size), RANGE_ALIGN, 0, size);
  let done = 0;
  // Chunks are read into reused memory where the sink is done with them when write() resolves (raw
  // files, compressed streams, qcow2, VHD, VHDX): fresh memory costs a page fault per 4 KiB (0.4 s of 1.4 s turning
  // 256 MiB of .zst back into raw). Other sinks may keep a chunk queued, so they get fresh buffers.
  // Aligned: a SOURCE read with O_DIRECT (a raw image not in the page cache) reads straight into them, and a direct
  // DEST writes from them as they are (no bounce through scratch memory: 0.16 s of copying per GiB otherwise).
  const pool = sink.releasesWrites ? new BufferPool((readAhead + writesInFlight + 2) * chunk, { aligned: true }) : undefined;
  const writes = new InFlight(writesInFlight);
  const window = new OrderedWindow<Piece>(readAhead, async (piece) => {
    if ("data" in piece) {
      const parts = spanWrites(sink, piece);
      let left = parts.length;
      for (const part of parts) {
        await writes.start(async () => {
          await part();
          if (--left === 0) pool?.give(piece.data);
        });
      }
    } else await writes.start(() => sink.writeZeros(piece.offset, piece.zeros));
    done += "data" in piece ? piece.data.length : piece.zeros;
    options.onProgress?.({ done, total: size });
  });
  try {
    for (const p of pieces(ranges, size, chunk)) {
      if (options.signal?.aborted) {
        throw new InterruptedError(`interrupted: ${options.dest} was not written`, options.interruptedBy?.());
      }
      await window.push(async (): Promise<Piece> => {
        if ("zeros" in p) return p;
        const data = await source.read(p.offset, p.length, pool?.take(p.length));
        if (!isAllZero(data)) return { offset: p.offset, data, ranges: p.ranges };
        pool?.give(data);
        return { offset: p.offset, zeros: p.length };
      });
    }
    await window.drain();
  } finally {
    // Nothing is still writing when the caller closes the sink, whatever failed.
    await writes.drain();
  }
}

/**
 * The writes of a span: its bytes whole, zeros between its ranges included,
 * unless the sink would store those zeros where writeZeros() leaves a hole
 * (a sparse raw DEST); then range by range, all-zero ones and the gaps as
 * zeros.
 */
function spanWrites(sink: BlockSink, { offset, data, ranges }: SpanData): Array<() => Promise<void>> {
  if (!sink.keepsHoles) return [() => sink.write(offset, data)];
  const parts: Array<() => Promise<void>> = [];
  let pos = offset;
  for (const [start, length] of ranges) {
    const gap = pos;
    if (start > gap) parts.push(() => sink.writeZeros(gap, start - gap));
    const bytes = data.subarray(start - offset, start - offset + length);
    parts.push(isAllZero(bytes) ? () => sink.writeZeros(start, length) : () => sink.write(start, bytes));
    pos = start + length;
  }
  return parts;
}
