/**
 * Capture into a compressed (.zst .xz .gz .bz2) or virtual-disk (.qcow2)
 * DEST, chosen as convert chooses it (DEST's extension, or --to).
 *
 * A virtual disk takes writes in any order: ddrescue's passes run as they do
 * into a raw file, and the mapfile is the truth about DEST after each flush.
 *
 * A compressed stream takes bytes in order only, so the copier runs as it
 * does into a pipe: each failing block is trimmed, scraped and retried in
 * memory before it is written. Such a DEST cannot be patched later, so a
 * later run cannot retry bad sectors already written into it (refused with
 * the way out: capture to raw or qcow2, retry there, then convert), nor
 * leave failing blocks for later (--no-trim, --no-scrape). What it can do is
 * resume after a kill -9: the writer cuts DEST back to its last whole frame
 * and says how many image bytes that holds ("committed"). The mapfile never
 * claims rescued bytes past that point, and a block with bad sectors is
 * written only after a map naming them is saved; so on resume every byte
 * DEST commits is either a bad sector the map names or a rescued one, and
 * everything after it is read again.
 */
import { promises as fsp } from "node:fs";
import type { ContainerSink, ContainerWriter } from "../container/format.js";
import { checkWriterFlags, chooseOutputFormat } from "../convert/output-format.js";
import { UsageError, ioError } from "../errors.js";
import { openImage, ownedSource } from "../image/open-image.js";
import type { BlockSource } from "../io/block-source.js";
import { InTurn } from "../util/in-turn.js";
import type { ImageTarget } from "./image-writer.js";
import { RescueMap } from "./rescue-map.js";

/** Compressed streams: written in order, never patched. Virtual disks take writes anywhere. */
const STREAM_FORMATS: ReadonlySet<string> = new Set(["gzip", "xz", "zstd", "bzip2"]);

export function writesInOrder(writer: ContainerWriter): boolean {
  return STREAM_FORMATS.has(writer.name);
}

/** The writer DEST's name (or --to) asks for; undefined for a raw image. Flags it would ignore are refused. */
export function containerWriterFor(
  dest: string,
  to: string | undefined,
  flags: { level?: number; threads?: number; writerOptions?: Record<string, unknown> },
): ContainerWriter | undefined {
  const format = dest === "-" && to === undefined ? ({ name: "raw" } as const) : chooseOutputFormat(dest, to);
  checkWriterFlags(format, flags);
  return format.name === "raw" ? undefined : (format as ContainerWriter);
}

/** A container DEST is an image file: not standard output, a FIFO or a device. */
export async function checkContainerDest(writer: ContainerWriter, dest: string, destIsStream: boolean): Promise<void> {
  const what = `a ${writer.name} image`;
  if (dest === "-" || destIsStream) {
    throw new UsageError(`${dest === "-" ? "standard output" : dest}: ${what} is written to a file; capture to raw (- or a pipe) and compress on the way instead`);
  }
  const st = await fsp.stat(dest).catch(() => undefined);
  if (st && !st.isFile()) throw new UsageError(`${dest}: ${what} is written to a regular file, not to a ${st.isDirectory() ? "folder" : "device"}`);
}

/** What a later run over a compressed DEST cannot do; checked before DEST is touched. */
export function refuseUnpatchable(writer: ContainerWriter, dest: string, map: RescueMap, from: number, to: number, retries: number): void {
  if (retries > 0 && map.bytes("-", from, to) > 0) {
    throw new UsageError(
      `cannot retry the bad sectors already written into ${dest}: a ${writer.name} stream cannot be patched in place; ` +
        "capture into a raw or .qcow2 image (where --retries rewrites them), then platter convert it",
    );
  }
}

export interface OpenedContainerDest {
  sink: ContainerSink;
  /** DEST was created (or replaced) by this run: it reads as zeros wherever nothing is written. */
  created: boolean;
}

/**
 * Open DEST: resumed when the map says an earlier run rescued bytes into it
 * (cut back to what it holds for sure, the map made to agree), else created.
 */
export async function openContainerDest(
  writer: ContainerWriter,
  dest: string,
  options: { resume: boolean; size: number; level?: number; threads?: number; writerOptions?: Record<string, unknown> },
  map: RescueMap,
  start: number,
  end: number,
): Promise<OpenedContainerDest> {
  const writerOptions = { size: options.size, level: options.level, threads: options.threads, ...options.writerOptions };
  if (!options.resume) return { sink: await writer.create(dest, writerOptions), created: true };
  if (!writer.resume) throw new UsageError(`${dest}: platter cannot resume writing a ${writer.name} image; start again without the mapfile`);
  const { sink, committed } = await writer.resume(dest, writerOptions);
  if (start + committed > end) {
    await sink.close();
    throw new UsageError(`${dest} holds ${committed} bytes of image, more than the ${end - start} this capture writes: not its DEST`);
  }
  if (sink.sequential) agreeWithCommitted(map, start, end, start + committed);
  return { sink, created: false };
}

/**
 * The map over a sequential DEST that holds the image's bytes up to
 * `committedEnd` (a source offset): every byte before it that the map does
 * not name bad was rescued (see the top of this file); every byte after it
 * is read again.
 */
export function agreeWithCommitted(map: RescueMap, start: number, end: number, committedEnd: number): void {
  for (const [a, b] of map.ranges(["?", "*", "/", "+"], start, committedEnd)) map.set(a, b, "+");
  if (committedEnd < end) map.set(committedEnd, end, "?");
}

/** The map as it may be saved while a sequential DEST holds its bytes up to `committedEnd`: no rescued byte past it. */
export function mapWithin(map: RescueMap, committedEnd: number, end: number): RescueMap {
  const saved = RescueMap.fromBlocks(map.toBlocks(), map.size);
  for (const [a, b] of saved.ranges("+", committedEnd, end)) saved.set(a, b, "?");
  return saved;
}

/**
 * The copier's target over a sequential DEST: writes reach the sink one
 * after another, in call order (the copier overlaps them), and a block that
 * holds bad sectors waits for `beforeBadBlock` (a saved map naming them).
 */
export class SequentialDestTarget implements ImageTarget {
  private readonly turns = new InTurn();

  constructor(
    private readonly inner: ImageTarget,
    private readonly map: RescueMap,
    private readonly beforeBadBlock: () => Promise<void>,
  ) {}

  data(pos: number, buf: Buffer): Promise<void> {
    return this.turns.run(async () => {
      if (this.map.bytes("-", pos, pos + buf.length) > 0) await this.beforeBadBlock();
      await this.inner.data(pos, buf);
    });
  }

  zeros(pos: number, length: number): Promise<void> {
    return this.turns.run(() => this.inner.zeros(pos, length));
  }
}

/** A finished container DEST read back as the image it holds (hashing what could not be hashed in passing). */
export async function openContainerImage(dest: string): Promise<BlockSource> {
  return ownedSource(await openImage(dest, { indexCache: false }));
}

/** What close() wrote (a trailer, refcounts) made durable too, before the mapfile says "Finished". */
export async function syncFile(path: string): Promise<void> {
  let handle: fsp.FileHandle | undefined;
  try {
    handle = await fsp.open(path, "r");
    await handle.datasync();
  } catch (err) {
    throw ioError(err, path);
  } finally {
    await handle?.close();
  }
}
