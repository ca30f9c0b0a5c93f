/**
 * Copying a stream (a pipe, a character device, standard input): one pass,
 * front to back, to its end, as cat and GNU dd read one. Nothing can be
 * skipped, trimmed or read again, so none of ddrescue's later phases apply:
 * a read error ends the capture, and the map (if any) says how far it got.
 *
 * The size is known only at the end: until then the map's domain runs to
 * UNKNOWN_END, non-tried past what has been read, which ddrescuelog reads
 * as an unfinished rescue.
 */
import { allocAlignedPool } from "../io/aligned.js";
import { DeviceError } from "../errors.js";
import type { SequentialSource } from "../io/stream-source.js";
import { formatSize } from "../util/units.js";
import { isReadError, throttle, type CopyPacing, type Phase } from "./copier.js";
import type { ImageTarget } from "./image-writer.js";
import type { RescueMap } from "./rescue-map.js";

/** The end of a stream's map before the stream has ended (the largest exact offset). */
export const UNKNOWN_END = Number.MAX_SAFE_INTEGER;

export interface StreamCopierOptions extends CopyPacing {
  /** Bytes per read and write. */
  blockSize: number;
  /** Source offsets [start, end): bytes before `start` are read and dropped; `end` undefined: to the end of the stream. */
  start: number;
  end?: number;
}

export class StreamCopier {
  phase: Phase = "copying";
  readonly pass = 1;
  /** Source offset of the next byte to read: the mapfile's current_pos. */
  position = 0;
  readErrors = 0;
  bytesRead = 0;
  /** Where the stream ended (a source offset), once it has; undefined when `end` came first. */
  streamEnd: number | undefined;
  /** The read error that ended the copy. */
  private failure: DeviceError | undefined;

  private readonly started = Date.now();
  private lastCheckpoint = Date.now();
  private lastProgress = 0;

  constructor(
    private readonly source: SequentialSource,
    private readonly target: ImageTarget,
    private readonly map: RescueMap,
    private readonly options: StreamCopierOptions,
  ) {}

  /** Copy to the end of the stream (or to `end`). False when interrupted. */
  async run(): Promise<boolean> {
    const { blockSize, start, end = UNKNOWN_END } = this.options;
    // Two buffers: one is read into while the other is written and hashed.
    const pool = allocAlignedPool(2, blockSize);
    const writes: Array<Promise<void> | undefined> = [undefined, undefined];
    try {
      if (!(await this.drop(start, pool[0]))) return !this.aborted;
      for (let slot = 0; this.position < end && this.streamEnd === undefined; slot ^= 1) {
        if (this.aborted) return false;
        await writes[slot];
        const pos = this.position;
        const n = await this.fill(pool[slot], Math.min(blockSize, end - pos));
        if (n > 0) {
          writes[slot] = this.commit(pos, pool[slot].subarray(0, n));
          writes[slot]?.catch(() => {}); // awaited before the buffer is reused, and below
        }
        if (this.failure || this.aborted) break;
        await this.maybeCheckpoint(writes);
      }
    } catch (err) {
      if (this.aborted) return false;
      throw err;
    } finally {
      await Promise.all(writes);
    }
    if (this.failure) throw this.failure;
    if (this.aborted) return false;
    this.phase = "finished";
    return true;
  }

  private get aborted(): boolean {
    return this.options.signal?.aborted === true;
  }

  /** Read and drop the bytes before `start`; false if the stream ended first (or the signal came). */
  private async drop(start: number, scratch: Buffer): Promise<boolean> {
    while (this.position < start && this.streamEnd === undefined) {
      if (this.aborted) return false;
      await this.fill(scratch, Math.min(scratch.length, start - this.position));
      if (this.failure) throw this.failure;
    }
    return this.streamEnd === undefined;
  }

  /**
   * Up to `length` bytes at the current position, short only where the
   * stream ends (then streamEnd is set) or fails (then `failure` is: what
   * came before the error is kept, and nothing can go back for the rest).
   */
  private async fill(buf: Buffer, length: number): Promise<number> {
    let done = 0;
    while (done < length) {
      await throttle(this.options.maxReadRate, this.started, this.bytesRead, length - done);
      let n: number;
      try {
        n = await this.source.readOnce(buf.subarray(done), length - done);
      } catch (err) {
        if (this.aborted) break; // the bytes before it are kept; the abandoned read fills only what follows them
        if (!isReadError(err)) throw err;
        this.readErrors++;
        this.failure = this.cannotRetry(err, this.position + done);
        break;
      }
      if (n === 0) {
        this.streamEnd = this.position + done;
        break;
      }
      done += n;
      this.bytesRead += n;
    }
    this.position += done;
    this.progress();
    return done;
  }

  private cannotRetry(err: unknown, at: number): DeviceError {
    const reason = err instanceof Error ? err.message : String(err);
    return new DeviceError(
      `${reason}; ${this.source.name} is a stream, which cannot be read again: the error cannot be retried or skipped ` +
        `(${formatSize(Math.max(0, at - this.options.start))} captured before it)`,
      err instanceof DeviceError ? err.code : undefined,
      { cause: err },
    );
  }

  private async commit(pos: number, data: Buffer): Promise<void> {
    await this.target.data(pos, data);
    this.map.set(pos, pos + data.length, "+");
  }

  private async maybeCheckpoint(writes: Array<Promise<void> | undefined>): Promise<void> {
    if (!this.options.checkpoint || Date.now() - this.lastCheckpoint < (this.options.checkpointMs ?? 5000)) return;
    await Promise.all(writes);
    await this.options.checkpoint();
    this.lastCheckpoint = Date.now();
  }

  private progress(): void {
    const now = Date.now();
    if (!this.options.onProgress || now - this.lastProgress < (this.options.progressMs ?? 100)) return;
    this.lastProgress = now;
    this.options.onProgress();
  }
}
