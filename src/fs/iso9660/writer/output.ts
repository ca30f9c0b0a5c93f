/**
 * The image goes out front to back through a buffer, so a pipe (`-o -`)
 * works and small records do not become small writes. Two buffers take
 * turns: while one is being written, the next is filled (file reads and
 * image writes overlap). Long zero runs go to the sink as writeZeros: holes
 * in a sparse output file. File data can skip the buffer: copyFromFile() has
 * the kernel copy it from the source file (copy_file_range) where the sink
 * can, and into an output that started empty, zeros are not written at all.
 */
import { allocHuge } from "../../../io/aligned.js";
import type { BlockSink } from "../../../io/block-source.js";

const BUFFER_SIZE = 4 << 20;
/** Zero runs at least this long become writeZeros (a hole); shorter ones are written. */
const HOLE_MIN = 256 << 10;

export class SequentialOutput {
  private readonly buffers = [allocHuge(BUFFER_SIZE), allocHuge(BUFFER_SIZE)];
  private current = 0;
  private filled = 0;
  /** Bytes handed to the sink so far (some may still be in flight). */
  private flushed = 0;
  private inFlight: Promise<void> | null = null;

  /** Until the sink first refuses an in-kernel copy. */
  private kernelCopy: boolean;

  /**
   * `startsEmpty`: the sink held nothing when the image began (a file just
   * created or truncated), so any range never written reads as zeros once
   * the final size is set.
   */
  constructor(
    private readonly sink: BlockSink,
    private readonly startsEmpty = false,
  ) {
    this.kernelCopy = sink.copyFromFile !== undefined;
  }

  private get buffer(): Buffer {
    return this.buffers[this.current];
  }

  /** Position of the next byte in the image. */
  get position(): number {
    return this.flushed + this.filled;
  }

  async write(data: Buffer): Promise<void> {
    if (data.length > BUFFER_SIZE - this.filled) {
      await this.flush();
      if (data.length >= BUFFER_SIZE / 2) {
        await this.settle();
        await this.sink.write(this.flushed, data);
        this.flushed += data.length;
        return;
      }
    }
    data.copy(this.buffer, this.filled);
    this.filled += data.length;
  }

  /** Room for `length` (at most 2 MiB) bytes to be filled in place, then commit(). */
  async reserve(length: number): Promise<Buffer> {
    if (length > BUFFER_SIZE - this.filled) await this.flush();
    return this.buffer.subarray(this.filled, this.filled + length);
  }

  commit(length: number): void {
    this.filled += length;
  }

  /**
   * Copy `length` bytes of the open file `fd` from `offset` to the current
   * position inside the kernel, without passing through this process.
   * Returns the bytes copied: fewer, down to 0, when the file ended early
   * or the sink cannot (it is not asked again); the caller writes the rest.
   */
  async copyFrom(fd: number, offset: number, length: number): Promise<number> {
    if (!this.kernelCopy || length === 0) return 0;
    // Buffered bytes lie before these: their write starts now, and the two ranges never overlap.
    await this.flush();
    const copied = await (this.sink.copyFromFile as NonNullable<BlockSink["copyFromFile"]>)(fd, offset, length, this.flushed);
    if (copied === 0) this.kernelCopy = false;
    this.flushed += copied;
    return copied;
  }

  async zeros(length: number): Promise<void> {
    // A long run, or any run with nothing buffered before it, when unwritten bytes read as zeros anyway.
    if (length >= HOLE_MIN || (this.startsEmpty && this.filled === 0)) {
      await this.flush();
      if (!this.startsEmpty) {
        await this.settle();
        await this.sink.writeZeros(this.flushed, length);
      }
      this.flushed += length;
      return;
    }
    let left = length;
    while (left > 0) {
      const room = await this.reserve(Math.min(left, BUFFER_SIZE));
      room.fill(0);
      this.commit(room.length);
      left -= room.length;
    }
  }

  /** Zeros up to the next multiple of `unit` bytes. */
  async padTo(unit: number): Promise<void> {
    const rest = this.position % unit;
    if (rest !== 0) await this.zeros(unit - rest);
  }

  /** Start writing the filled buffer and switch to the other one (once the write before is done). */
  async flush(): Promise<void> {
    if (this.filled === 0) return;
    await this.settle();
    this.inFlight = this.sink.write(this.flushed, this.buffer.subarray(0, this.filled));
    this.flushed += this.filled;
    this.filled = 0;
    // A stream may hold on to the bytes it was given after write() returns: never reuse them.
    if (this.sink.sequential) this.buffers[this.current] = allocHuge(BUFFER_SIZE);
    this.current = 1 - this.current;
  }

  /** Wait for the write in flight; its error surfaces here. */
  async settle(): Promise<void> {
    const pending = this.inFlight;
    this.inFlight = null;
    if (pending) await pending;
  }

  /** Everything written: flush and wait. */
  async finish(): Promise<void> {
    await this.flush();
    await this.settle();
  }
}
