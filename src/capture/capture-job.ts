/**
 * The steps of one capture, in the order capture() runs them (see
 * capture.ts): open and check, load the map, open DEST, run the passes,
 * finish. Each step leaves the job in a state the next one, or abandon()
 * and close(), know how to handle.
 */
import { promises as fsp } from "node:fs";
import type { BlockSink, BlockSource } from "../io/block-source.js";
import { FileSink, isStreamOutput, openStreamSink, StreamSink } from "../io/file-sink.js";
import { openSource } from "../io/file-source.js";
import type { SequentialSource } from "../io/stream-source.js";
import { ioError, UsageError } from "../errors.js";
import { formatSize } from "../util/units.js";
import type { CaptureOptions, CaptureProgress, CaptureResult } from "./capture.js";
import { CaptureMap, phaseMessage } from "./capture-map.js";
import type { ContainerSink, ContainerWriter } from "../container/format.js";
import {
  checkContainerDest,
  containerWriterFor,
  mapWithin,
  openContainerDest,
  openContainerImage,
  refuseUnpatchable,
  SequentialDestTarget,
  syncFile,
  writesInOrder,
} from "./container-dest.js";
import { Copier, type Phase } from "./copier.js";
import { hashFromDest } from "./dest-hash.js";
import { CaptureDomain } from "./domain.js";
import { openImageOrStream } from "./image-source.js";
import { formatHashLines } from "./hasher.js";
import { ImageWriter, InOrderHasher, type ImageTarget } from "./image-writer.js";
import { createHasher, readsAroundCache, type StreamHasher } from "./parallel-hasher.js";
import { checkCaptureTargets, checkOutputPaths, type NamedOutput } from "../io/device-safety.js";
import { StreamCopier, UNKNOWN_END } from "./stream-copier.js";

export const DEFAULT_BLOCK_SIZE = 1 << 20;
export const DEFAULT_MAP_INTERVAL_MS = 5000;
const MAX_BLOCK_SIZE = 64 << 20;
/** The sector size of a stream, which has none: only the block size matters there. */
const STREAM_SECTOR = 512;

function isSequential(source: BlockSource | SequentialSource): source is SequentialSource {
  return !("size" in source);
}

export class CaptureJob {
  private readonly startedAt = Date.now();
  private readonly blockSize: number;
  private readonly sectorSize: number;
  private readonly retries: number;
  /** The domain, in SOURCE offsets: [start, end); a stream's end is UNKNOWN_END until it ends. */
  private readonly start: number;
  private end: number;
  private captureMap: CaptureMap | undefined;
  private sink: BlockSink | undefined;
  /** DEST is a regular file this run created or truncated: it reads as zeros wherever nothing was written. */
  private createdOrTruncated = false;
  private copier: Copier | StreamCopier | undefined;
  private hasher: (StreamHasher & { dispose?(): Promise<void> }) | undefined;
  private inOrder: InOrderHasher | undefined;
  private hashedFromDest = 0;
  /** Every pass ran and DEST has its final size: a failure after that leaves it in place. */
  private destFinished = false;
  /** DEST takes bytes in order only: standard output or a FIFO. */
  private destIsStream = false;
  /** --used-only: the bytes the filesystems use, the only ones read. */
  private domain: CaptureDomain | undefined;
  /** DEST is a compressed or virtual-disk image (container-dest.ts); undefined: raw. */
  private writer: ContainerWriter | undefined;
  /** Its sink, still asked what it committed once closed. */
  private containerSink: ContainerSink | undefined;

  private constructor(
    private readonly options: CaptureOptions,
    private readonly source: BlockSource | SequentialSource,
  ) {
    this.blockSize = options.blockSize ?? DEFAULT_BLOCK_SIZE;
    this.sectorSize = options.sectorSize ?? (isSequential(source) ? STREAM_SECTOR : source.sectorSize);
    this.retries = options.retries ?? 0;
    this.start = options.skip ?? 0;
    const size = isSequential(source) ? UNKNOWN_END : source.size;
    this.end = options.length === undefined ? size : this.start + options.length;
  }

  /** A compressed DEST: written in order, never patched (container-dest.ts). */
  private get compressedDest(): boolean {
    return this.writer !== undefined && writesInOrder(this.writer);
  }

  /** Step 1: open SOURCE; check the sizes, the window and every path the capture will write. */
  static async open(options: CaptureOptions): Promise<CaptureJob> {
    const source =
      typeof options.source === "string"
        ? await openImageOrStream(options.source, { direct: options.direct ?? "cold", raw: options.raw, signal: options.signal, onWarning: options.onWarning })
        : options.source;
    const job = new CaptureJob(options, source);
    try {
      await job.check();
    } catch (err) {
      await job.close();
      throw err;
    }
    return job;
  }

  private get mapPath(): string | undefined {
    return this.options.mapPath;
  }

  private async check(): Promise<void> {
    const { options, source } = this;
    validateSizes(this.blockSize, this.sectorSize, this.retries);
    this.writer = containerWriterFor(options.dest, options.to, options);
    if (!isSequential(source)) {
      if (this.start > source.size) throw new UsageError(`--skip ${this.start} is past the end of ${source.name} (${source.size} bytes)`);
      if (this.end > source.size) {
        throw new UsageError(`--skip ${this.start} --length ${options.length} goes past the end of ${source.name} (${source.size} bytes)`);
      }
    }
    this.destIsStream = options.dest === "-" || (await isStreamOutput(options.dest));
    if (this.writer) await checkContainerDest(this.writer, options.dest, this.destIsStream);
    if (options.dest !== "-" && typeof options.source === "string") {
      for (const w of await checkCaptureTargets(options.source, options.dest)) options.onWarning?.(w);
    }
    const outputs: NamedOutput[] = [];
    if (options.dest !== "-") outputs.push({ what: "DEST", path: options.dest });
    if (options.mapPath) outputs.push({ what: "--map", path: options.mapPath });
    if (options.hashFile) outputs.push({ what: "--hash-file", path: options.hashFile });
    await checkOutputPaths(typeof options.source === "string" ? options.source : undefined, outputs);
    if (options.usedOnly) this.domain = await CaptureDomain.find(source, options.onWarning);
  }

  /** Step 2: the mapfile to resume, or a fresh map (saved at once, so a bad --map fails now). */
  async loadMap(): Promise<void> {
    const { options, source } = this;
    const size = isSequential(source) ? UNKNOWN_END : source.size;
    const capture = await CaptureMap.open(this.mapPath, size, this.start, {
      comments: options.mapComments ?? [],
      startedAt: this.startedAt,
      warn: options.onWarning,
    });
    this.captureMap = capture;
    if (this.domain) capture.restrictTo(this.domain);
    const rescuedBefore = this.rescuedBefore;
    const { destIsStream } = this;
    if ((destIsStream || this.compressedDest) && (options.noTrim || options.noScrape)) {
      throw new UsageError(
        `--no-trim and --no-scrape need a DEST that can be completed later, not ${this.compressedDest ? `a ${this.writer?.name} stream (capture to raw or .qcow2)` : "a stream"}`,
      );
    }
    if (this.writer && this.compressedDest && rescuedBefore > 0) refuseUnpatchable(this.writer, options.dest, capture.map, this.start, this.end, this.retries);
    if (capture.resumed && isSequential(source)) {
      throw new UsageError(`cannot resume from ${source.name}: a stream cannot be read again from where ${this.mapPath} stopped`);
    }
    if (destIsStream && rescuedBefore > 0) {
      throw new UsageError(`cannot resume into a stream: ${this.mapPath} says ${formatSize(rescuedBefore)} were already rescued`);
    }
    if (capture.resumed && rescuedBefore > 0 && !destIsStream && !(await exists(options.dest))) {
      throw new UsageError(`${this.mapPath} says ${formatSize(rescuedBefore)} were rescued into ${options.dest}, but it does not exist`);
    }
    await capture.save("Starting", undefined);
  }

  /** Step 3: open DEST (created, truncated, or written in place when resuming); hash what earlier runs rescued in order. */
  async openDest(): Promise<void> {
    const { options } = this;
    const capture = this.captureMap as CaptureMap;
    if (this.writer) {
      const { level, threads, writerOptions } = options;
      const settings = { resume: this.rescuedBefore > 0, size: this.end - this.start, level, threads, writerOptions };
      const opened = await openContainerDest(this.writer, options.dest, settings, capture.map, this.start, this.end);
      this.sink = this.containerSink = opened.sink;
      this.createdOrTruncated = opened.created;
    } else if (options.dest === "-") {
      this.sink = new StreamSink(options.stdout ?? process.stdout);
    } else if (this.destIsStream) {
      this.sink = await openStreamSink(options.dest, options.signal);
    } else {
      if (!isSequential(this.source)) await checkDestSize(options.dest, this.end - this.start);
      const fileSink = await FileSink.open(options.dest, {
        create: true,
        truncate: !capture.resumed,
        sparse: options.sparse,
        exclusive: true,
      });
      this.sink = fileSink;
      this.createdOrTruncated = fileSink.isRegularFile && !capture.resumed;
    }
    // Hashing: in order while the copy allows it; DEST fills in the rest at the end.
    if (!options.hashes?.length) return;
    this.hasher = createHasher(options.hashes, this.end - this.start, readsAroundCache(this.source));
    this.inOrder = new InOrderHasher(this.hasher, this.start);
    // A container DEST is read back only once it is closed (its index written): at the end.
    if (this.rescuedBefore > 0 && !this.writer) {
      const prefixEnd = capture.map.firstNot("+", this.start, this.end);
      this.hashedFromDest += await hashFromDest(await this.openDestImage(), this.start, capture.map, this.inOrder, prefixEnd, (n) =>
        this.report("copying", 1, this.start, { hashing: n }),
      );
    }
  }

  /** Step 4: the rescue passes (a stream's one pass), saving the map every few seconds. False when interrupted. */
  async runPasses(): Promise<boolean> {
    const { options, source } = this;
    const sink = this.sink as BlockSink;
    const map = (this.captureMap as CaptureMap).map;
    // A virtual disk leaves all-zero clusters unallocated, as convert does.
    const sparse = Boolean(options.sparse) || (this.writer !== undefined && !sink.sequential);
    const imageWriter = new ImageWriter(sink, {
      origin: this.start,
      sparse,
      zeroFilled: this.createdOrTruncated,
      hasher: this.inOrder,
      // A plain file DEST is read back to hash what the kernel copied (a container DEST only once it is closed).
      readBack: this.writer || this.destIsStream ? undefined : () => openSource(options.dest),
    });
    const writer: ImageTarget = this.compressedDest
      ? new SequentialDestTarget(imageWriter, map, async () => {
          await sink.flush();
          await this.saveMap(this.copier ? phaseMessage(this.copier) : "Copying");
        })
      : imageWriter;
    const common = {
      signal: options.signal,
      maxReadRate: options.maxReadRate,
      checkpointMs: options.mapIntervalMs ?? DEFAULT_MAP_INTERVAL_MS,
      checkpoint: this.mapPath
        ? async () => {
            // A saved map must never claim more than DEST durably holds.
            await sink.flush();
            if (this.copier) await this.saveMap(phaseMessage(this.copier));
          }
        : undefined,
      onProgress: () => this.report(this.copier?.phase ?? "copying", this.copier?.pass ?? 1, this.copier?.position ?? this.start),
    };
    if (isSequential(source)) {
      const end = options.length === undefined ? undefined : this.end;
      this.copier = new StreamCopier(source, writer, map, { ...common, blockSize: this.blockSize, start: this.start, end });
    } else {
      const read = this.domain?.view(source) ?? source;
      this.copier = new Copier(read, read, writer, map, {
        ...common,
        blockSize: this.blockSize,
        sectorSize: this.sectorSize,
        retries: this.retries,
        noTrim: options.noTrim,
        noScrape: options.noScrape,
        start: this.start,
        end: this.end,
        inOrder: sink.sequential,
      });
    }
    let finished: boolean;
    try {
      finished = await this.copier.run();
    } catch (err) {
      await imageWriter.settle().catch(() => {});
      throw err;
    }
    // The last copied span's hashing, before the map or the digests are taken as they stand.
    await imageWriter.settle();
    return finished;
  }

  /** Step 5: DEST completed (bad sectors zeroed, its size set, synced), hashed to the end, the map and the hash file saved. */
  async finish(finished: boolean): Promise<CaptureResult> {
    const { options } = this;
    const sink = this.sink as BlockSink;
    if (finished) this.fitStreamEnd();
    const map = (this.captureMap as CaptureMap).map;
    const { start, end } = this;
    // Every byte rescued or known bad (--no-trim/--no-scrape leave failing blocks for later).
    const complete = finished && map.ranges(["?", "*", "/"], start, end).length === 0;
    if (finished) {
      // Unreadable sectors read as zeros in the image, whatever DEST held there before.
      if (!sink.sequential && !this.createdOrTruncated) for (const [a, b] of map.ranges("-", start, end)) await sink.writeZeros(a - start, b - a);
      await sink.setSize(end - start);
    }
    // With a mapfile, "Finished" must not be saved before DEST is durable. Without
    // one, DEST is left to the page cache, as dd and cp leave it.
    if (this.mapPath) await sink.flush();
    if (this.writer) {
      await this.closeSink(); // the trailer, index or refcounts written: DEST reads as an image
      if (this.mapPath && finished) await syncFile(options.dest);
    }
    // From here on DEST is the image, whatever fails next (hashing, the hash file).
    this.destFinished = finished;

    let hashes: Record<string, string> = {};
    if (complete && this.hasher && this.inOrder) {
      if (this.inOrder.frontier < end) {
        this.hashedFromDest += await hashFromDest(await this.openDestImage(), start, map, this.inOrder, end, (n) =>
          this.report("finished", 1, end, { hashing: n }),
        );
      }
      hashes = await this.hasher.digest();
      this.hasher = undefined;
    }
    await this.saveMap(finished ? "Finished" : "Interrupted by user");
    if (!finished && !this.mapPath && this.createdOrTruncated) {
      // Nothing could resume it, and it could pass for a complete image.
      await this.removeDest();
    }
    if (options.hashFile && complete) await writeHashFile(options.hashFile, hashes, options.dest);

    const copied = map.bytes("+", start, end);
    const unreadable = map.bytes("-", start, end);
    // An interrupted stream's size is what was read of it.
    const size = end === UNKNOWN_END ? copied : end - start;
    return {
      source: this.source.name,
      dest: options.dest,
      size,
      bytesCopied: copied,
      bytesUnreadable: unreadable,
      badRanges: map.ranges("-", start, end).map(([a, b]): [number, number] => [a, b - a]),
      hashes,
      seconds: Math.round((Date.now() - this.startedAt) / 10) / 100,
      complete,
      interrupted: !finished,
      resumed: (this.captureMap as CaptureMap).resumed,
      fromStream: isSequential(this.source),
      bytesUnfinished: size - copied - unreadable,
      hashedFromDest: this.hashedFromDest,
      readErrors: this.copier?.readErrors ?? 0,
      used: this.domain && {
        bytesRead: this.copier?.bytesRead ?? 0,
        bytesSkipped: size - this.domain.bytesIn(start, end),
        partitions: this.domain.partitions,
      },
    };
  }

  /**
   * After a failure: the map (if any) is the truth about DEST, so both are
   * kept once the copy began; without one, a partial DEST this run created
   * is useless and could pass for complete. A mapfile this run created for
   * a copy that never started would only mislead.
   */
  async abandon(): Promise<void> {
    const copying = this.copier !== undefined;
    if (this.mapPath && copying) {
      await this.sink?.flush().catch(() => {});
      await this.saveMap("Stopped by an error").catch(() => {});
    }
    if (this.createdOrTruncated && !this.destFinished && (!this.mapPath || !copying)) await this.removeDest().catch(() => {});
    if (this.mapPath && !this.captureMap?.loaded && !copying && this.captureMap) await fsp.rm(this.mapPath, { force: true }).catch(() => {});
  }

  /** Release everything; SOURCE only if this job opened it. */
  async close(): Promise<void> {
    await this.hasher?.dispose?.();
    await this.sink?.close();
    if (typeof this.options.source === "string") await this.source.close();
  }

  /** Bytes of the domain an earlier run rescued. */
  private get rescuedBefore(): number {
    return this.captureMap?.map.bytes("+", this.start, this.end) ?? 0;
  }

  /** A stream's domain ends where the stream did; a --skip past that end is refused, as for a file. */
  private fitStreamEnd(): void {
    if (!(this.copier instanceof StreamCopier) || this.copier.streamEnd === undefined) return;
    const streamEnd = this.copier.streamEnd;
    if (streamEnd < this.start) throw new UsageError(`--skip ${this.start} is past the end of ${this.source.name} (${streamEnd} bytes)`);
    if (this.options.length !== undefined) {
      this.options.onWarning?.(`${this.source.name} ended after ${streamEnd - this.start} bytes of the ${this.options.length} asked by --length`);
    }
    this.end = streamEnd;
    this.captureMap = (this.captureMap as CaptureMap).fitTo(streamEnd);
  }

  private async saveMap(message: string): Promise<void> {
    const captureMap = this.captureMap;
    if (!captureMap) return;
    // A compressed DEST holds for sure only its whole frames (all it was given, once closed).
    const committed = this.compressedDest ? this.containerSink?.committed : undefined;
    const held = committed === undefined ? undefined : mapWithin(captureMap.map, this.start + committed, this.end);
    await captureMap.save(message, this.copier, held);
  }

  /** DEST as the image it holds, for hashing what could not be hashed in passing. */
  private openDestImage(): Promise<BlockSource> {
    return this.writer ? openContainerImage(this.options.dest) : openSource(this.options.dest);
  }

  private async closeSink(): Promise<void> {
    const sink = this.sink;
    this.sink = undefined;
    await sink?.close();
  }

  private async removeDest(): Promise<void> {
    await this.closeSink();
    await fsp.rm(this.options.dest, { force: true });
  }

  private report(phase: Phase, pass: number, position: number, extra: Partial<CaptureProgress> = {}): void {
    const map = (this.captureMap as CaptureMap).map;
    this.options.onProgress?.({
      phase,
      pass,
      position,
      rescued: map.bytes("+", this.start, this.end),
      unreadable: map.bytes("-", this.start, this.end),
      total: this.end === UNKNOWN_END ? undefined : this.end - this.start,
      bytesRead: this.copier?.bytesRead ?? 0,
      startedAt: this.startedAt,
      ...extra,
    });
  }
}

function validateSizes(blockSize: number, sectorSize: number, retries: number): void {
  // A power of two, as every logical sector is: it then divides any power-of-two --block-size, the default one too.
  if (!Number.isSafeInteger(sectorSize) || sectorSize < 512 || sectorSize > 1 << 20 || (sectorSize & (sectorSize - 1)) !== 0) {
    throw new UsageError(`invalid --sector-size ${sectorSize}: must be a power of two from 512 bytes to 1 MiB`);
  }
  if (!Number.isSafeInteger(blockSize) || blockSize < sectorSize || blockSize > MAX_BLOCK_SIZE || blockSize % sectorSize !== 0) {
    throw new UsageError(
      `invalid --block-size ${blockSize}: must be a multiple of the sector size (${sectorSize}), at most ${formatSize(MAX_BLOCK_SIZE)}`,
    );
  }
  if (!Number.isSafeInteger(retries) || retries < 0) throw new UsageError(`invalid --retries ${retries}`);
}

async function exists(path: string): Promise<boolean> {
  try {
    await fsp.stat(path);
    return true;
  } catch {
    return false;
  }
}

/** A block-device DEST must be large enough; files grow. */
async function checkDestSize(dest: string, needed: number): Promise<void> {
  let st;
  try {
    st = await fsp.stat(dest);
  } catch {
    return;
  }
  if (!st.isBlockDevice()) return;
  const d = await openSource(dest);
  const size = d.size;
  await d.close();
  if (size < needed) throw new UsageError(`${dest} holds ${size} bytes, less than the ${needed} bytes to capture`);
}

async function writeHashFile(path: string, hashes: Record<string, string>, dest: string): Promise<void> {
  try {
    await fsp.writeFile(path, formatHashLines(hashes, dest));
  } catch (err) {
    throw ioError(err, path);
  }
}
