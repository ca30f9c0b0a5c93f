/**
 * The rescue passes, after GNU ddrescue's algorithm. Each pass asks the map
 * what is unfinished and reads only that, so an interrupted rescue resumes
 * for free.
 *
 * 1. Copying, in large blocks (--block-size), in three passes:
 *    - pass 1 forwards; a failing block is marked non-trimmed ('*') and the
 *      copier skips ahead (64 KiB, doubling on each consecutive error), to
 *      get out of a bad area fast and rescue the good areas first;
 *    - pass 2 backwards over what pass 1 skipped, giving up on an area at
 *      its first error (this finds the trailing edge of bad areas);
 *    - pass 3 forwards over whatever is left, without skipping.
 * 2. Trimming, sector by sector: each non-trimmed block (split at
 *    --block-size boundaries, the extent of one failed read) is read forwards
 *    from its leading edge and backwards from its trailing edge until a read
 *    fails; the failing sectors become bad ('-'), the middle non-scraped ('/').
 * 3. Scraping: every non-scraped sector is read once.
 * 4. Retrying: --retries passes over the bad sectors, alternating direction.
 *
 * Large reads overlap while they succeed (see readWindow). Where the target
 * can take them (a plain file DEST, SOURCE a file read through the page
 * cache, no hashing), the blocks of the copying phase are copied inside the
 * kernel instead of read and written, once the first block went that way
 * in spans of many blocks, one at a time (copies side by side into one
 * file only contend); a span whose copy fails keeps the bytes copied before
 * the failure, and the block where it failed counts as a failed read of
 * that block, so everything after goes as it would. A sector is
 * read at most twice before retrying (once inside a large block, once
 * alone), as in ddrescue, to spare a failing drive. Sector reads
 * overlap while they succeed (a 1 MiB failing block is 2048 sectors), and
 * go one at a time again after a failure. --no-trim / --no-scrape stop
 * before phases 2 / 3, leaving the failing blocks for a later run.
 *
 * When DEST is a pipe, bytes must leave in order: each failing block is
 * then trimmed, scraped and retried as soon as it fails, in memory, before
 * it is written.
 */
import type { BlockSource } from "../io/block-source.js";
import { allocAlignedPool } from "../io/aligned.js";
import { DeviceError, errnoCode, PartialCopyError } from "../errors.js";
import type { PhaseStatus } from "./mapfile.js";
import { BufferTarget, type ImageTarget } from "./image-writer.js";
import type { RescueMap } from "./rescue-map.js";

export type Phase = "copying" | "trimming" | "scraping" | "retrying" | "finished";

/** The status character a phase writes in the mapfile's status line. */
export const PHASE_STATUS: Record<Phase, PhaseStatus> = {
  copying: "?",
  trimming: "*",
  scraping: "/",
  retrying: "-",
  finished: "+",
};

export interface CopierOptions extends CopyPacing {
  /** Large-read size of the copying phase. */
  blockSize: number;
  /** Read size of trimming, scraping and retrying: the unit of loss. */
  sectorSize: number;
  /** Passes over the bad sectors after scraping. */
  retries: number;
  /** Skip trimming (ddrescue -N) or scraping (ddrescue -n): rescue the good areas first, come back later. */
  noTrim?: boolean;
  noScrape?: boolean;
  /** The rescue domain [start, end) in source offsets. */
  start: number;
  end: number;
  /** Resolve each failing block at once so bytes reach the target in order (a pipe). */
  inOrder?: boolean;
}

/** What every copy (random-access or stream) takes for stopping, pacing, checkpoints and progress. */
export interface CopyPacing {
  /** Stop cleanly at the next read boundary. */
  signal?: AbortSignal;
  /** Bytes per second; reads wait to stay under it. */
  maxReadRate?: number;
  /** Called every `checkpointMs` at a point where the map matches what was written. */
  checkpoint?: () => Promise<void>;
  checkpointMs?: number;
  /** Called at most every `progressMs` (and at phase changes). */
  onProgress?: () => void;
  progressMs?: number;
}

/** Errors a failing medium gives for a read; anything else stops the rescue. */
const READ_ERROR_CODES = new Set(["EIO", "ENODATA", "EILSEQ", "ETIMEDOUT", "EBADMSG", "EREMOTEIO", "ENOMEDIUM"]);

export function isReadError(err: unknown): boolean {
  return err instanceof DeviceError ? READ_ERROR_CODES.has(err.code ?? "") : READ_ERROR_CODES.has(errnoCode(err) ?? "");
}

/**
 * Large reads in flight at once while they succeed: a disk streams best
 * with a queue, and a direct read has no kernel read-ahead to give it one.
 * The width doubles from one on each success and falls back to one at the
 * first failure, so a bad area is approached one read at a time. The window
 * holds four reads (fewer when --block-size makes them over 16 MiB in all),
 * or, for small blocks such as ddrescue's 64 KiB cluster, 4 MiB of them.
 */
function readWindow(blockSize: number): number {
  const byCount = Math.min(4, Math.floor((16 << 20) / blockSize));
  const byBytes = Math.min(64, Math.floor((4 << 20) / blockSize));
  return Math.max(1, byCount, byBytes);
}
const MIN_SKIP = 64 << 10;
const MAX_SKIP = 1 << 30;
/** Sector reads in flight at once while trimming, scraping and retrying. */
const SECTOR_WINDOW = 16;
/** Sparse-source hole lookups cover this much at a time. */
const HOLE_WINDOW = 256 << 20;

class Interrupted extends Error {}

/** A block that went from SOURCE to the target inside the kernel: nothing left to write. */
const COPIED = "copied";
/** A span of many blocks whose first `copied` bytes reached the target before a read failed. */
class CopiedPart {
  constructor(readonly copied: number) {}
}
/** What came of reading a block: its bytes, already in the target, or undefined for a failed read. */
type Outcome = Buffer | typeof COPIED | CopiedPart | undefined;
/** Kernel copies of the first copying pass cover this much at a time (at least one block). */
const KERNEL_SPAN = 32 << 20;

interface Span {
  pos: number;
  end: number;
  /** Known to read as zeros without reading (a hole of a sparse source). */
  hole?: boolean;
  /** Which area of a backward pass it belongs to. */
  area?: number;
  /** Many blocks copied in the kernel, the only span in flight: a failure may move the walk back into it. */
  large?: boolean;
}

/** The order in which a copying pass reads, and how a failed read changes it. */
interface Walk {
  /** The span after the last one handed out; undefined when the pass is done. */
  next(): Promise<Span | undefined>;
  /** The outcome of each span handed out, in the same order. */
  settled(span: Span, ok: boolean): void;
}

const alignDown = (n: number, a: number) => Math.floor(n / a) * a;
const alignUp = (n: number, a: number) => Math.ceil(n / a) * a;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export class Copier {
  phase: Phase = "copying";
  pass = 1;
  /** Where the rescue is: the mapfile's current_pos. */
  position: number;
  /** Reads that failed in this run. */
  readErrors = 0;
  /** Bytes read from the source in this run. */
  bytesRead = 0;

  /** Buffers for the large reads: one per read in flight, and two more whose blocks are being written. */
  private readonly pool: Buffer[];
  private readonly writes: Array<Promise<void> | undefined>;
  private readonly readWindow: number;
  private readonly sectorBuffers: Buffer[];
  private readonly started = Date.now();
  private lastCheckpoint = Date.now();
  private lastProgress = 0;
  private holes: { from: number; to: number; data: Array<[number, number]> } | undefined;
  /** Blocks are copied inside the kernel until the target or source first refuses it. */
  private copyInKernel: boolean;
  /** A block was copied in the kernel: spans of many blocks may follow. */
  private kernelCopied = false;

  constructor(
    /** Large reads come from here. */
    private readonly bulk: BlockSource,
    /** Sector reads come from here: the same source, opened with O_DIRECT when it is a device. */
    private readonly sectors: BlockSource,
    private readonly target: ImageTarget,
    private readonly map: RescueMap,
    private readonly options: CopierOptions,
  ) {
    this.position = options.start;
    this.readWindow = readWindow(options.blockSize);
    // Aligned, so a direct source reads straight into them.
    this.pool = allocAlignedPool(this.readWindow + 2, options.blockSize);
    this.writes = this.pool.map(() => undefined);
    this.sectorBuffers = Array.from({ length: SECTOR_WINDOW }, () => Buffer.allocUnsafe(options.sectorSize));
    this.copyInKernel = target.copy !== undefined && bulk.copyTo !== undefined;
  }

  /** Run every phase over what the map says is unfinished. Returns false when interrupted. */
  async run(): Promise<boolean> {
    try {
      if (this.options.inOrder) {
        // Each failing block is finished as it fails (see pipeline): one forward pass does it all.
        await this.copyForwards(1, false);
      } else {
        await this.copyForwards(1, true);
        await this.copyBackwards(2);
        await this.copyForwards(3, false);
        if (!this.options.noTrim) await this.trim(this.options.start, this.options.end, this.target);
        if (!this.options.noScrape) await this.scrape(this.options.start, this.options.end, this.target);
        for (let r = 1; r <= this.options.retries; r++) {
          await this.retry(r, this.options.start, this.options.end, this.target);
        }
      }
      this.enter("finished", 1, this.options.end);
      return true;
    } catch (err) {
      if (err instanceof Interrupted) return false;
      throw err;
    } finally {
      await this.drainWrites();
    }
  }

  // ---- copying -------------------------------------------------------------

  /** Forward copying pass over the non-tried areas; with `skipping`, jump past errors. */
  private async copyForwards(pass: number, skipping: boolean): Promise<void> {
    const areas = this.map.ranges("?", this.options.start, this.options.end);
    if (areas.length === 0) return;
    this.enter("copying", pass, areas[0][0]);
    const { blockSize, sectorSize } = this.options;
    let cursor = areas[0][0];
    let area = 0;
    let skip = 0;
    await this.pipeline({
      next: async () => {
        for (; area < areas.length; area++) {
          const [a, b] = areas[area];
          const from = Math.max(cursor, a);
          if (from >= b) continue;
          // Not under --max-read-rate: a large span would wait its whole time before it starts, and Ctrl-C after it.
          const large = skipping && this.copyInKernel && this.kernelCopied && KERNEL_SPAN > blockSize && !this.options.maxReadRate;
          const blockEnd = alignDown(from, blockSize) + (large ? alignDown(KERNEL_SPAN, blockSize) : blockSize);
          const span = await this.spanAt(from, Math.min(b, blockEnd), b);
          if (large && !span.hole) span.large = true;
          cursor = span.end;
          return span;
        }
        return undefined;
      },
      settled: (span, ok) => {
        if (ok) skip = 0;
        else if (skipping) {
          skip = skip === 0 ? MIN_SKIP : Math.min(skip * 2, MAX_SKIP);
          // Reads already in flight past the failure went on: the next one starts past them or past the skip,
          // whichever is further. Nothing is in flight past a large span: the rest of it is read after the skip.
          const next = alignUp(span.end + skip, sectorSize);
          cursor = span.large ? next : Math.max(cursor, next);
        }
      },
    });
  }

  /** Backward pass: each non-tried area is read from its end until its first error. */
  private async copyBackwards(pass: number): Promise<void> {
    const areas = this.map.ranges("?", this.options.start, this.options.end).reverse();
    if (areas.length === 0) return;
    this.enter("copying", pass, areas[0][1]);
    let cursor = areas[0][1];
    let area = 0;
    await this.pipeline({
      next: async () => {
        for (; area < areas.length; area++) {
          const [a, b] = areas[area];
          const to = Math.min(cursor, b);
          if (to <= a) {
            if (area + 1 < areas.length) cursor = areas[area + 1][1];
            continue;
          }
          const span = await this.spanBefore(to, Math.max(a, alignDown(to - 1, this.options.blockSize)), a);
          cursor = span.pos;
          return { ...span, area };
        }
        return undefined;
      },
      settled: (span, ok) => {
        // Leave the rest of this area for pass 3 (once: reads in flight below the failure may fail too).
        if (!ok && span.area === area) {
          area++;
          if (area < areas.length) cursor = areas[area][1];
        }
      },
    });
  }

  /**
   * Read the spans of a walk, up to the read window in flight while earlier
   * blocks are hashed and written; outcomes are taken in order.
   */
  private async pipeline(walk: Walk): Promise<void> {
    const inFlight: Array<{ span: Span; slot: number; read: Promise<Outcome> }> = [];
    let width = 1;
    let slot = 0;
    let done = false;
    const fill = async () => {
      // Nothing goes in flight after a large span: its failure may move the walk back into it.
      while (!done && inFlight.length < width && !inFlight[inFlight.length - 1]?.span.large) {
        const span = await walk.next();
        if (!span) {
          done = true;
          break;
        }
        this.stopIfAborted();
        // The slot's last read finished (fewer reads are in flight than slots); its write may not have.
        slot = (slot + 1) % this.pool.length;
        await this.writes[slot];
        inFlight.push({ span, slot, read: this.startRead(span, this.pool[slot]) });
      }
    };
    try {
      await fill();
      for (let head = inFlight.shift(); head; head = inFlight.shift()) {
        let { span } = head;
        let data = await head.read;
        if (data instanceof CopiedPart) {
          // The bytes copied before the failure stay; the block where it failed goes on as a failed read.
          const failedAt = span.pos + data.copied;
          if (data.copied > 0) await this.commit({ pos: span.pos, end: failedAt }, COPIED);
          span = { pos: failedAt, end: Math.min(span.end, alignDown(failedAt, this.options.blockSize) + this.options.blockSize), large: true };
          data = undefined;
        }
        walk.settled(span, data !== undefined);
        width = data ? Math.min(width * 2, this.readWindow) : 1;
        if (data || this.options.inOrder) {
          // A pipe takes a failing block once it is finished, before any later block.
          const write = data
            ? this.commit(span, data)
            : this.target.data(span.pos, await this.finishInMemory(span, this.pool[head.slot]));
          write.catch(() => {}); // awaited before its buffer is reused, and at the end
          this.writes[head.slot] = write;
        } else {
          this.map.set(span.pos, span.end, "*");
          this.progress();
        }
        await fill();
        this.position = inFlight[0]?.span.pos ?? span.end;
        if (inFlight.length > 0) await this.maybeCheckpoint();
      }
    } finally {
      // Stopped early: no read may still be filling a buffer, or reading a file about to be closed.
      await Promise.allSettled(inFlight.map((f) => f.read));
    }
    // The next pass asks the map what is left: it must see every write of this one.
    await this.drainWrites();
  }

  /** A read (or a copy) that resolves to undefined on a medium error instead of rejecting. */
  private startRead(span: Span, buf: Buffer): Promise<Outcome> {
    if (span.hole) return Promise.resolve(Buffer.alloc(0));
    const p = span.large
      ? this.copyLarge(span, buf)
      : this.copyInKernel ? this.copyOrRead(span, buf) : this.readOrUndefined(this.bulk, span.pos, span.end - span.pos, buf);
    p.catch(() => {}); // handled when awaited; keeps an early fatal error from being "unhandled"
    return p;
  }

  /** The span copied in the kernel; read into `buf` instead once the target refuses copies. */
  private async copyOrRead(span: Span, buf: Buffer): Promise<Outcome> {
    const length = span.end - span.pos;
    const copy = this.target.copy as NonNullable<ImageTarget["copy"]>;
    const copied = await this.attempt(length, () => copy.call(this.target, this.bulk, span.pos, length));
    if (copied) {
      this.kernelCopied = true;
      return COPIED;
    }
    if (copied === undefined) return undefined;
    this.copyInKernel = false;
    return this.readOrUndefined(this.bulk, span.pos, length, buf);
  }

  /** A span of many blocks copied in the kernel; read and written block by block into `buf` if the kernel refuses it. */
  private async copyLarge(span: Span, buf: Buffer): Promise<Outcome> {
    const length = span.end - span.pos;
    const copy = this.target.copy as NonNullable<ImageTarget["copy"]>;
    let before = 0;
    const copied = await this.attempt(length, async () => {
      try {
        return await copy.call(this.target, this.bulk, span.pos, length);
      } catch (err) {
        if (err instanceof PartialCopyError) before = alignDown(err.copied, this.options.sectorSize);
        throw err;
      }
    });
    if (copied) return COPIED;
    if (copied === undefined) {
      this.bytesRead += before;
      return new CopiedPart(before);
    }
    this.copyInKernel = false;
    const { blockSize } = this.options;
    for (let pos = span.pos; pos < span.end; pos += blockSize) {
      const data = await this.readOrUndefined(this.bulk, pos, Math.min(blockSize, span.end - pos), buf);
      if (!data) return new CopiedPart(pos - span.pos);
      await this.target.data(pos, data);
    }
    return COPIED;
  }

  private async commit(span: Span, data: Buffer | typeof COPIED): Promise<void> {
    if (span.hole) await this.target.zeros(span.pos, span.end - span.pos);
    else if (data !== COPIED) await this.target.data(span.pos, data);
    this.map.set(span.pos, span.end, "+");
    this.progress();
  }

  /**
   * DEST is a pipe, where bytes leave in order: a failing block is trimmed,
   * scraped and retried at once, in its buffer, and returned for writing
   * before any later block is.
   */
  private async finishInMemory(span: Span, buf: Buffer): Promise<Buffer> {
    this.map.set(span.pos, span.end, "*");
    const block = new BufferTarget(span.pos, buf.subarray(0, span.end - span.pos));
    await this.trim(span.pos, span.end, block);
    await this.scrape(span.pos, span.end, block);
    for (let r = 1; r <= this.options.retries; r++) await this.retry(r, span.pos, span.end, block);
    this.enter("copying", 1, span.end);
    return block.buffer;
  }

  /**
   * The next span to read forwards from `pos`: a data block up to the next
   * block boundary (`blockEnd`), or, in a sparse source, a whole hole up to
   * the next data (at most `areaEnd`).
   */
  private async spanAt(pos: number, blockEnd: number, areaEnd: number): Promise<Span> {
    const data = await this.dataIn(pos, areaEnd, false);
    if (!data) return { pos, end: blockEnd };
    if (data.length === 0) return { pos, end: Math.min(areaEnd, this.holes?.to ?? areaEnd), hole: true };
    const [s, e] = data[0];
    return s > pos ? { pos, end: s, hole: true } : { pos, end: Math.min(e, blockEnd) };
  }

  /** The same going backwards: the span that ends at `end`, starting no lower than `blockStart` (data) or `areaStart` (hole). */
  private async spanBefore(end: number, blockStart: number, areaStart: number): Promise<Span> {
    const data = await this.dataIn(areaStart, end, true);
    if (!data) return { pos: blockStart, end };
    if (data.length === 0) return { pos: Math.max(areaStart, this.holes?.from ?? areaStart), end, hole: true };
    const [s, e] = data[data.length - 1];
    return e < end ? { pos: e, end, hole: true } : { pos: Math.max(s, blockStart), end };
  }

  /**
   * Data ranges of a sparse source inside [from, to), clipped to the window
   * looked up with SEEK_DATA/SEEK_HOLE; undefined when the source cannot tell.
   */
  private async dataIn(from: number, to: number, backwards: boolean): Promise<Array<[number, number]> | undefined> {
    if (!this.bulk.dataRanges) return undefined;
    const anchor = backwards ? to : from;
    if (!this.holes || anchor < this.holes.from || anchor > this.holes.to || (backwards ? anchor === this.holes.from : anchor === this.holes.to)) {
      const a = backwards ? Math.max(this.options.start, to - HOLE_WINDOW) : from;
      const b = backwards ? to : Math.min(this.options.end, from + HOLE_WINDOW);
      this.holes = { from: a, to: b, data: await this.bulk.dataRanges(a, b - a) };
    }
    const lo = Math.max(from, this.holes.from);
    const hi = Math.min(to, this.holes.to);
    const inside: Array<[number, number]> = [];
    for (const [s, len] of this.holes.data) {
      const a = Math.max(s, lo);
      const b = Math.min(s + len, hi);
      if (a < b) inside.push([a, b]);
    }
    return inside;
  }

  // ---- sector phases ---------------------------------------------------------

  /** Trimming: read inwards from both edges of each non-trimmed block until a sector fails. */
  private async trim(from: number, to: number, target: ImageTarget): Promise<void> {
    const blocks = this.map.ranges("*", from, to);
    if (blocks.length === 0) return;
    this.enter("trimming", 1, blocks[0][0]);
    const { blockSize } = this.options;
    for (const [areaStart, areaEnd] of blocks) {
      // Failed reads next to each other merge in the map; each is trimmed on its own again, so
      // good sectors between two bad spots come back by trimming instead of one by one by scraping.
      for (let a = areaStart; a < areaEnd; a = Math.min(areaEnd, alignDown(a, blockSize) + blockSize)) {
        const b = Math.min(areaEnd, alignDown(a, blockSize) + blockSize);
        // An edge next to a known bad sector counts as trimmed already (as in ddrescue).
        if (a === 0 || this.map.statusAt(a - 1) !== "-") {
          await this.readSectors(this.sectorSpans(a, b, false), target, true);
        }
        if (b >= this.map.size || this.map.statusAt(b) !== "-") {
          await this.readSectors(this.sectorSpans(a, b, true), target, true, (pos) => this.map.statusAt(pos) === "*");
        }
        for (const [s, e] of this.map.ranges("*", a, b)) this.map.set(s, e, "/");
      }
    }
  }

  /** Scraping: every non-scraped sector, forwards, once. */
  private async scrape(from: number, to: number, target: ImageTarget): Promise<void> {
    const blocks = this.map.ranges("/", from, to);
    if (blocks.length === 0) return;
    this.enter("scraping", 1, blocks[0][0]);
    for (const [a, b] of blocks) await this.readSectors(this.sectorSpans(a, b, false), target, false);
  }

  /** One retry pass over the bad sectors; odd passes go forwards, even ones backwards. */
  private async retry(pass: number, from: number, to: number, target: ImageTarget): Promise<void> {
    const forwards = pass % 2 === 1;
    const blocks = this.map.ranges("-", from, to);
    if (blocks.length === 0) return;
    if (!forwards) blocks.reverse();
    this.enter("retrying", pass, forwards ? blocks[0][0] : blocks[0][1]);
    for (const [a, b] of blocks) await this.readSectors(this.sectorSpans(a, b, !forwards), target, false);
  }

  /** The sectors of [a, b) (the first and last may be partial), in order or in reverse. */
  private *sectorSpans(a: number, b: number, descending: boolean): Generator<[number, number]> {
    const size = this.options.sectorSize;
    if (!descending) {
      for (let pos = a; pos < b; pos = Math.min(b, alignDown(pos, size) + size)) yield [pos, Math.min(b, alignDown(pos, size) + size)];
    } else {
      for (let end = b; end > a; end = Math.max(a, alignDown(end - 1, size))) yield [Math.max(a, alignDown(end - 1, size)), end];
    }
  }

  /**
   * Read sectors each on its own, as ddrescue does; rescued → '+', failed → '-'.
   * Reads overlap (up to SECTOR_WINDOW, doubling while they succeed, back to
   * one after a failure), so a run of good sectors goes at the device's pace
   * while a bad area is approached one sector at a time. With `stopAtError`
   * the walk ends after the window where a sector failed; `wanted` ends it at
   * the first sector it refuses. Returns false if a sector failed.
   *
   * A block held in memory for a pipe is finished before anything stops or
   * saves the map, so the map never claims bytes DEST has not received.
   */
  private async readSectors(
    spans: Iterator<[number, number]>,
    target: ImageTarget,
    stopAtError: boolean,
    wanted?: (pos: number) => boolean,
  ): Promise<boolean> {
    const direct = target === this.target;
    let width = 1;
    let allGood = true;
    for (let exhausted = false; !exhausted; ) {
      if (direct) this.stopIfAborted();
      const window: Array<[number, number]> = [];
      while (window.length < width) {
        const next = spans.next();
        if (next.done || (wanted && !wanted(next.value[0]))) {
          exhausted = true;
          break;
        }
        window.push(next.value);
      }
      if (window.length === 0) break;
      this.position = window[0][0];
      const results = await Promise.all(
        window.map(([pos, end], i) => this.readOrUndefined(this.sectors, pos, end - pos, this.sectorBuffers[i])),
      );
      let failed = false;
      for (let i = 0; i < window.length; i++) {
        const [pos, end] = window[i];
        const data = results[i];
        if (data) await target.data(pos, data);
        else failed = true;
        this.map.set(pos, end, data ? "+" : "-");
      }
      this.progress();
      if (direct) await this.maybeCheckpoint();
      allGood &&= !failed;
      if (failed && stopAtError) break;
      width = failed ? 1 : Math.min(width * 2, SECTOR_WINDOW);
    }
    return allGood;
  }

  // ---- plumbing ----------------------------------------------------------------

  private readOrUndefined(source: BlockSource, pos: number, length: number, buf: Buffer): Promise<Buffer | undefined> {
    return this.attempt(length, () => source.read(pos, length, buf));
  }

  /** Read `length` bytes with `read`, paced by --max-read-rate; undefined on a medium error, which is counted. */
  private async attempt<T>(length: number, read: () => Promise<T>): Promise<T | undefined> {
    await throttle(this.options.maxReadRate, this.started, this.bytesRead, length);
    try {
      const result = await read();
      if (result) this.bytesRead += length;
      return result;
    } catch (err) {
      if (!isReadError(err)) throw err;
      this.readErrors++;
      return undefined;
    }
  }

  private enter(phase: Phase, pass: number, position: number): void {
    this.phase = phase;
    this.pass = pass;
    this.position = position;
    this.progress(true);
  }

  private progress(force = false): void {
    if (!this.options.onProgress) return;
    const now = Date.now();
    if (!force && now - this.lastProgress < (this.options.progressMs ?? 100)) return;
    this.lastProgress = now;
    this.options.onProgress();
  }

  private stopIfAborted(): void {
    if (this.options.signal?.aborted) throw new Interrupted();
  }

  private async drainWrites(): Promise<void> {
    for (let i = 0; i < this.writes.length; i++) {
      const w = this.writes[i];
      this.writes[i] = undefined;
      await w;
    }
  }

  private async maybeCheckpoint(): Promise<void> {
    if (!this.options.checkpoint) return;
    if (Date.now() - this.lastCheckpoint < (this.options.checkpointMs ?? 5000)) return;
    await this.drainWrites();
    await this.options.checkpoint();
    this.lastCheckpoint = Date.now();
  }
}

/** Wait as long as reading `length` more bytes takes to stay under `rate` bytes per second since `started`. */
export async function throttle(rate: number | undefined, started: number, bytesRead: number, length: number): Promise<void> {
  if (!rate) return;
  const wait = started + ((bytesRead + length) / rate) * 1000 - Date.now();
  if (wait > 0) await sleep(wait);
}
