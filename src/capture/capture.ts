/**
 * `capture`: image a drive or a file without losing one readable byte.
 * Opens SOURCE and DEST, refuses dangerous pairs, loads or starts the
 * mapfile, runs the rescue passes (copier.ts), saves the map every few
 * seconds and at the end, and hashes the image.
 *
 * Hashing never reads SOURCE twice. While the copy runs in order, each
 * block is hashed as it passes. Bytes that only reach DEST out of order
 * (after a read error the copier skips ahead and comes back later) and
 * bytes rescued by an earlier run are hashed at the end by reading DEST,
 * the final zero-filled image. A capture without read errors thus hashes
 * in the same pass; one with errors re-reads DEST from the first error on.
 */
import { promises as fsp } from "node:fs";
import type { BlockSink, BlockSource } from "../io/block-source.js";
import { FileSink, StreamSink } from "../io/file-sink.js";
import { openSource } from "../io/file-source.js";
import { CorruptImageError, UsageError } from "../errors.js";
import { formatSize } from "../util/units.js";
import { VERSION } from "../version.js";
import { Copier, PHASE_STATUS, type Phase } from "./copier.js";
import type { HashAlgorithm } from "./hasher.js";
import { ImageWriter, InOrderHasher } from "./image-writer.js";
import { encodeMapfile, type Mapfile } from "./mapfile.js";
import { loadMapfile, mapTimestamp, saveMapfile } from "./map-store.js";
import { createHasher, type StreamHasher } from "./parallel-hasher.js";
import { RescueMap } from "./rescue-map.js";
import { checkCaptureTargets } from "./safety.js";

export const DEFAULT_BLOCK_SIZE = 1 << 20;
export const DEFAULT_MAP_INTERVAL_MS = 5000;
const MAX_BLOCK_SIZE = 64 << 20;
const HASH_CHUNK = 4 << 20;

export interface CaptureOptions {
  /** A path (file or block device), or an open source (tests; the caller closes it). */
  source: string | BlockSource;
  /** A file, a block device, or "-" for standard output. */
  dest: string;
  /** GNU ddrescue mapfile: resumed when it exists, kept up to date. */
  mapPath?: string;
  hashes?: HashAlgorithm[];
  /** All-zero blocks become holes in a regular-file DEST. */
  sparse?: boolean;
  blockSize?: number;
  /** Granularity of trimming, scraping and retrying; default: the source's logical sector size. */
  sectorSize?: number;
  retries?: number;
  /** Leave failing blocks untrimmed / unscraped for a later run (ddrescue's -N / -n). */
  noTrim?: boolean;
  noScrape?: boolean;
  /** First source byte to capture; it lands at DEST offset 0. */
  skip?: number;
  /** Bytes to capture; default: to the end of SOURCE. */
  length?: number;
  /** Read through O_DIRECT; default: for block devices. */
  direct?: boolean;
  /** Limit the read rate (bytes per second). */
  maxReadRate?: number;
  mapIntervalMs?: number;
  /** Heading lines for the mapfile (e.g. the command line), without "# ". */
  mapComments?: string[];
  signal?: AbortSignal;
  onProgress?: (p: CaptureProgress) => void;
  onWarning?: (message: string) => void;
  /** Where DEST "-" goes (default process.stdout). */
  stdout?: NodeJS.WritableStream;
}

export interface CaptureProgress {
  phase: Phase;
  pass: number;
  /** Source offset being read. */
  position: number;
  /** Domain bytes rescued so far (including earlier runs). */
  rescued: number;
  /** Domain bytes found unreadable so far. */
  unreadable: number;
  /** Domain size. */
  total: number;
  /** Bytes read from SOURCE by this run, and when it started. */
  bytesRead: number;
  startedAt: number;
  /** Hashing DEST at the end (phase "finished"): bytes hashed of `total`. */
  hashing?: number;
}

/** The summary; the first nine fields are exactly `capture --json`. */
export interface CaptureResult {
  source: string;
  dest: string;
  size: number;
  bytesCopied: number;
  bytesUnreadable: number;
  badRanges: Array<[number, number]>;
  hashes: Record<string, string>;
  seconds: number;
  complete: boolean;
  /** Stopped by the signal before finishing (the map, if any, is saved). */
  interrupted: boolean;
  /** Continued from an existing mapfile. */
  resumed: boolean;
  /** Domain bytes neither rescued nor known bad (left by --no-trim/--no-scrape, or an interruption). */
  bytesUnfinished: number;
  /** Bytes the hash had to read back from DEST (after a read error, or rescued by an earlier run). */
  hashedFromDest: number;
  readErrors: number;
}

/** Run a capture. Throws PlatterErrors for bad input; never prints. */
export async function capture(options: CaptureOptions): Promise<CaptureResult> {
  const startedAt = Date.now();
  const toStdout = options.dest === "-";
  const blockSize = options.blockSize ?? DEFAULT_BLOCK_SIZE;
  const retries = options.retries ?? 0;

  const source = typeof options.source === "string" ? await openCaptureSource(options.source, options.direct) : options.source;
  const sourceName = source.name;
  let sink: BlockSink | undefined;
  let createdOrTruncated = false;
  let map: RescueMap | undefined;
  let saveMap: ((final: string) => Promise<void>) | undefined;
  let copying = false;
  let mapExisted = false;
  let multi: (StreamHasher & { dispose?(): Promise<void> }) | undefined;
  try {
    const sectorSize = options.sectorSize ?? source.sectorSize;
    validateSizes(blockSize, sectorSize, retries);
    const start = options.skip ?? 0;
    if (start > source.size) throw new UsageError(`--skip ${start} is past the end of ${sourceName} (${source.size} bytes)`);
    const end = options.length === undefined ? source.size : start + options.length;
    if (end > source.size) {
      throw new UsageError(`--skip ${start} --length ${options.length} goes past the end of ${sourceName} (${source.size} bytes)`);
    }

    if (!toStdout && typeof options.source === "string") {
      for (const w of await checkCaptureTargets(options.source, options.dest)) options.onWarning?.(w);
    }

    const loaded = options.mapPath ? await loadMapfile(options.mapPath) : undefined;
    mapExisted = loaded !== undefined;
    map = loaded ? fitMap(loaded, source.size, options.mapPath as string) : new RescueMap(source.size);
    const resumed = loaded !== undefined && loaded.blocks.some((b) => b.status !== "?");
    const rescuedBefore = map.bytes("+", start, end);
    if (loaded && resumed) checkOrigin(loaded, start, options.mapPath as string, options.onWarning);
    if (toStdout && (options.noTrim || options.noScrape)) {
      throw new UsageError("--no-trim and --no-scrape need a DEST that can be completed later, not standard output");
    }
    if (toStdout && rescuedBefore > 0) {
      throw new UsageError(`cannot resume into standard output: ${options.mapPath} says ${formatSize(rescuedBefore)} were already rescued`);
    }

    if (resumed && rescuedBefore > 0 && !toStdout && !(await exists(options.dest))) {
      throw new UsageError(`${options.mapPath} says ${formatSize(rescuedBefore)} were rescued into ${options.dest}, but it does not exist`);
    }

    // The mapfile heading and its atomic save.
    const comments = [
      `Mapfile. Created by platter ${VERSION} (GNU ddrescue mapfile format)`,
      ...(options.mapComments ?? []),
      `${ORIGIN_COMMENT}${start}`,
      `Start time:   ${mapTimestamp(new Date(startedAt))}`,
    ];
    const rescueMap = map;
    let copier: Copier | undefined;
    if (options.mapPath) {
      const mapPath = options.mapPath;
      saveMap = async (message: string) => {
        const file: Mapfile = {
          comments: [...comments, `Current time: ${mapTimestamp(new Date())}`, message],
          currentPos: copier?.position ?? loaded?.currentPos ?? start,
          currentStatus: copier ? PHASE_STATUS[copier.phase] : (loaded?.currentStatus ?? "?"),
          currentPass: copier?.pass ?? loaded?.currentPass ?? 1,
          blocks: rescueMap.toBlocks(),
        };
        await saveMapfile(mapPath, encodeMapfile(file));
      };
      await saveMap("Starting");
    }

    if (toStdout) {
      sink = new StreamSink(options.stdout ?? process.stdout);
    } else {
      await checkDestSize(options.dest, end - start);
      const fileSink = await FileSink.open(options.dest, {
        create: true,
        truncate: !resumed,
        sparse: options.sparse,
        exclusive: true,
      });
      sink = fileSink;
      createdOrTruncated = fileSink.isRegularFile && !resumed;
    }
    const zeroFilled = createdOrTruncated;

    // Hashing: in order while the copy allows it; DEST fills in the rest at the end.
    let hashedFromDest = 0;
    multi = options.hashes?.length ? createHasher(options.hashes, end - start) : undefined;
    const inOrder = multi ? new InOrderHasher(multi, start) : undefined;
    const progress = (phase: Phase, pass: number, position: number, extra: Partial<CaptureProgress> = {}) =>
      options.onProgress?.({
        phase,
        pass,
        position,
        rescued: rescueMap.bytes("+", start, end),
        unreadable: rescueMap.bytes("-", start, end),
        total: end - start,
        bytesRead: copier?.bytesRead ?? 0,
        startedAt,
        ...extra,
      });
    if (inOrder && rescuedBefore > 0) {
      const prefixEnd = rescueMap.firstNot("+", start, end);
      hashedFromDest += await hashFromDest(options.dest, start, rescueMap, inOrder, prefixEnd, (n) =>
        progress("copying", 1, start, { hashing: n }),
      );
    }

    const writer = new ImageWriter(sink, { origin: start, sparse: Boolean(options.sparse), zeroFilled, hasher: inOrder });
    const finalSink = sink;
    copier = new Copier(source, source, writer, rescueMap, {
      blockSize,
      sectorSize,
      retries,
      noTrim: options.noTrim,
      noScrape: options.noScrape,
      start,
      end,
      inOrder: sink.sequential,
      signal: options.signal,
      maxReadRate: options.maxReadRate,
      checkpointMs: options.mapIntervalMs ?? DEFAULT_MAP_INTERVAL_MS,
      checkpoint: saveMap
        ? async () => {
            // A saved map must never claim more than DEST durably holds.
            await finalSink.flush();
            await saveMap?.(phaseMessage(copier as Copier));
          }
        : undefined,
      onProgress: () => progress(copier?.phase ?? "copying", copier?.pass ?? 1, copier?.position ?? start),
    });
    copying = true;
    const finished = await copier.run();
    // Every byte rescued or known bad (--no-trim/--no-scrape leave failing blocks for later).
    const complete = finished && rescueMap.ranges(["?", "*", "/"], start, end).length === 0;

    if (finished && !sink.sequential) {
      // Unreadable sectors read as zeros in the image, whatever DEST held there before.
      if (!zeroFilled) for (const [a, b] of rescueMap.ranges("-", start, end)) await sink.writeZeros(a - start, b - a);
      await sink.setSize(end - start);
    } else if (finished) {
      await sink.setSize(end - start);
    }
    // With a mapfile, "Finished" must not be saved before DEST is durable. Without
    // one, DEST is left to the page cache, as dd and cp leave it.
    if (saveMap) await sink.flush();

    let hashes: Record<string, string> = {};
    if (complete && multi && inOrder) {
      if (inOrder.frontier < end) {
        hashedFromDest += await hashFromDest(options.dest, start, rescueMap, inOrder, end, (n) =>
          progress("finished", 1, end, { hashing: n }),
        );
      }
      hashes = await multi.digest();
      multi = undefined;
    }
    await saveMap?.(finished ? "Finished" : "Interrupted by user");
    if (!finished && !options.mapPath && createdOrTruncated) {
      // Nothing could resume it, and it could pass for a complete image.
      await sink.close();
      sink = undefined;
      await fsp.rm(options.dest, { force: true });
    }

    const badRanges = rescueMap.ranges("-", start, end).map(([a, b]): [number, number] => [a, b - a]);
    return {
      source: sourceName,
      dest: options.dest,
      size: end - start,
      bytesCopied: rescueMap.bytes("+", start, end),
      bytesUnreadable: rescueMap.bytes("-", start, end),
      badRanges,
      bytesUnfinished: end - start - rescueMap.bytes("+", start, end) - rescueMap.bytes("-", start, end),
      hashes,
      seconds: Math.round((Date.now() - startedAt) / 10) / 100,
      complete,
      interrupted: !finished,
      resumed,
      hashedFromDest,
      readErrors: copier.readErrors,
    };
  } catch (err) {
    // The map (if any) is the truth about DEST: keep both. Without one, a
    // partial DEST we created is useless and could pass for complete.
    if (saveMap && copying) {
      await sink?.flush().catch(() => {});
      await saveMap("Stopped by an error").catch(() => {});
    }
    await sink?.close().catch(() => {});
    sink = undefined;
    if (createdOrTruncated && (!options.mapPath || !copying)) await fsp.rm(options.dest, { force: true }).catch(() => {});
    // A mapfile this run created for a copy that never started would only mislead.
    if (options.mapPath && !mapExisted && !copying) await fsp.rm(options.mapPath, { force: true }).catch(() => {});
    throw err;
  } finally {
    await multi?.dispose?.();
    await sink?.close();
    if (typeof options.source === "string") await source.close();
  }
}

/** Block devices, and files the page cache mostly lacks, are read with O_DIRECT (see OpenSourceOptions.direct). */
async function openCaptureSource(path: string, direct: boolean | undefined): Promise<BlockSource> {
  const source = await openSource(path, { direct: direct ?? "cold" });
  if (!source.isBlockDevice && !(await fsp.stat(path)).isFile()) {
    await source.close();
    throw new UsageError(`${path}: not a file or a block device (capture reads those; pipe a stream to a file first)`);
  }
  return source;
}

/** The heading line that records where DEST starts, so a resume with another --skip is refused. */
const ORIGIN_COMMENT = "DEST offset 0 is SOURCE offset ";

function checkOrigin(loaded: Mapfile, start: number, mapPath: string, warn: ((m: string) => void) | undefined): void {
  const line = loaded.comments.find((c) => c.startsWith(ORIGIN_COMMENT));
  if (line === undefined) {
    // ddrescue writes DEST at the SOURCE offset (its -o defaults to -i).
    if (start !== 0) warn?.(`${mapPath} does not say where DEST starts; with --skip ${start}, DEST offset 0 is SOURCE offset ${start}`);
    return;
  }
  const recorded = Number(line.slice(ORIGIN_COMMENT.length));
  if (recorded !== start) {
    throw new UsageError(`${mapPath} belongs to a capture with --skip ${recorded}; resume it with the same --skip (this run: ${start})`);
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

function fitMap(loaded: Mapfile, size: number, path: string): RescueMap {
  try {
    return RescueMap.fromBlocks(loaded.blocks, size);
  } catch (err) {
    if (err instanceof CorruptImageError) throw new CorruptImageError(`${path}: ${err.message}`);
    throw err;
  }
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

/** ddrescue's status message for the mapfile heading. */
function phaseMessage(copier: Copier): string {
  switch (copier.phase) {
    case "copying":
      return `Copying non-tried blocks... Pass ${copier.pass} (${copier.pass === 2 ? "backwards" : "forwards"})`;
    case "trimming":
      return "Trimming failed blocks... (forwards)";
    case "scraping":
      return "Scraping failed blocks... (forwards)";
    case "retrying":
      return `Retrying bad sectors... Retry ${copier.pass} (${copier.pass % 2 === 1 ? "forwards" : "backwards"})`;
    case "finished":
      return "Finished";
  }
}

/**
 * Hash the finished image from the hasher's frontier up to `to` by reading
 * DEST back: rescued runs are read (holes of a sparse DEST and bytes past
 * its end are zeros without reading), bad runs are zeros. Returns bytes read.
 */
async function hashFromDest(
  dest: string,
  origin: number,
  map: RescueMap,
  hasher: InOrderHasher,
  to: number,
  onProgress: (hashed: number) => void,
): Promise<number> {
  const image = await openSource(dest);
  const buf = Buffer.allocUnsafe(HASH_CHUNK);
  let read = 0;
  try {
    while (hasher.frontier < to) {
      const run = map.runAt(hasher.frontier);
      const runEnd = Math.min(run.end, to);
      if (run.status !== "+") {
        if (run.status !== "-") throw new Error(`internal: hashing an unfinished area at ${hasher.frontier}`);
        await hasher.offerZeros(hasher.frontier, runEnd - hasher.frontier);
        continue;
      }
      // DEST offsets of this run that exist in the file.
      const a = hasher.frontier - origin;
      const b = Math.min(runEnd - origin, image.size);
      const ranges: Array<[number, number]> =
        a >= b ? [] : image.dataRanges ? await image.dataRanges(a, b - a) : [[a, b - a]];
      for (const [s, len] of ranges) {
        await hasher.offerZeros(hasher.frontier, s + origin - hasher.frontier);
        for (let pos = s; pos < s + len; ) {
          const n = Math.min(HASH_CHUNK, s + len - pos);
          await hasher.offer(pos + origin, await image.read(pos, n, buf));
          read += n;
          pos += n;
          onProgress(hasher.frontier - origin);
        }
      }
      await hasher.offerZeros(hasher.frontier, runEnd - hasher.frontier);
    }
    return read;
  } finally {
    await image.close();
  }
}
