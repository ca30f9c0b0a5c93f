/**
 * `capture`: image a drive or a file without losing one readable byte.
 * Opens SOURCE and DEST, refuses dangerous pairs, loads or starts the
 * mapfile, runs the rescue passes (copier.ts), saves the map every few
 * seconds and at the end, and hashes the image. A stream SOURCE (a pipe,
 * standard input, a character device) is copied to its end in one pass
 * (stream-copier.ts); its size is known only then.
 *
 * Hashing never reads SOURCE twice. While the copy runs in order, each
 * block is hashed as it passes. Bytes that only reach DEST out of order
 * (after a read error the copier skips ahead and comes back later) and
 * bytes rescued by an earlier run are hashed at the end by reading DEST,
 * the final zero-filled image. A capture without read errors thus hashes
 * in the same pass; one with errors re-reads DEST from the first error on
 * (dest-hash.ts).
 */
import type { BlockSource } from "../io/block-source.js";
import type { SequentialSource } from "../io/stream-source.js";
import { CaptureJob } from "./capture-job.js";
import type { Phase } from "./copier.js";
import type { UsedSummary } from "./domain.js";
import type { HashAlgorithm } from "./hasher.js";

export { DEFAULT_BLOCK_SIZE, DEFAULT_MAP_INTERVAL_MS } from "./capture-job.js";

export interface CaptureOptions {
  /**
   * A path (a file, a block device, or a stream: a pipe, a FIFO, a
   * character device, "-" for standard input), or an open source (tests;
   * the caller closes it). A compressed or virtual-disk image file is read
   * as the disk it holds (openImage); a stream as it is.
   */
  source: string | BlockSource | SequentialSource;
  /** Read a SOURCE file's bytes as they are, with no container layer. */
  raw?: boolean;
  /**
   * A file, a block device, a FIFO, or "-" for standard output; a name ending
   * .zst .xz .gz .bz2 .qcow2 (or `to`) is written as that image (container-dest.ts).
   */
  dest: string;
  /** DEST's format by name or extension, as convert's --to ("raw" for none). */
  to?: string;
  /** Compression level and threads of a compressed DEST; its writer's own options (qcow2 `compress`). */
  level?: number;
  threads?: number;
  writerOptions?: Record<string, unknown>;
  /** GNU ddrescue mapfile: resumed when it exists, kept up to date. */
  mapPath?: string;
  hashes?: HashAlgorithm[];
  /** Where to write the digests for `sha256sum -c` once the image is complete. */
  hashFile?: string;
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
  /** Read only the blocks the filesystems use (and partition tables, gaps, unknown partitions); free space becomes zeros/holes. */
  usedOnly?: boolean;
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
  /** Domain size; undefined while a stream's end is unknown. */
  total: number | undefined;
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
  /** SOURCE was a stream: read once, in one pass, its size known only at its end. */
  fromStream: boolean;
  /** Domain bytes neither rescued nor known bad (left by --no-trim/--no-scrape, or an interruption). */
  bytesUnfinished: number;
  /** Bytes the hash had to read back from DEST (after a read error, or rescued by an earlier run). */
  hashedFromDest: number;
  readErrors: number;
  /** --used-only: what was read and what was skipped as free space. */
  used?: UsedSummary;
}

/**
 * Run a capture. Throws PlatterErrors for bad input; never prints.
 * Every step is checked before the long one starts: a bad flag, a dangerous
 * DEST or an unwritable --map fail before a byte is copied.
 */
export async function capture(options: CaptureOptions): Promise<CaptureResult> {
  const job = await CaptureJob.open(options); // SOURCE opened, sizes, window and every output path checked
  try {
    await job.loadMap(); // resume what the mapfile says, or start one
    await job.openDest(); // and hash what an earlier run rescued in order
    const finished = await job.runPasses(); // false when the signal came
    return await job.finish(finished); // DEST completed, hashed, the map and the hash file saved
  } catch (err) {
    await job.abandon(); // the map saved if the copy began; a DEST no map describes removed
    throw err;
  } finally {
    await job.close();
  }
}
