/**
 * The image goes out front to back through one buffer, so a pipe (`-o -`)
 * works and small records do not become small writes. Long zero runs go to
 * the sink as writeZeros: holes in a sparse output file.
 */
import type { BlockSink } from "../../../io/block-source.js";

const BUFFER_SIZE = 4 << 20;
/** Zero runs at least this long become writeZeros (a hole); shorter ones are written. */
const HOLE_MIN = 256 << 10;

export class SequentialOutput {
  private buffer = Buffer.allocUnsafe(BUFFER_SIZE);
  private filled = 0;
  /** Bytes handed to the sink so far. */
  private flushed = 0;

  constructor(private readonly sink: BlockSink) {}

  /** Position of the next byte in the image. */
  get position(): number {
    return this.flushed + this.filled;
  }

  async write(data: Buffer): Promise<void> {
    if (data.length > BUFFER_SIZE - this.filled) {
      await this.flush();
      if (data.length >= BUFFER_SIZE / 2) {
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

  async zeros(length: number): Promise<void> {
    if (length >= HOLE_MIN) {
      await this.flush();
      await this.sink.writeZeros(this.flushed, length);
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

  async flush(): Promise<void> {
    if (this.filled === 0) return;
    await this.sink.write(this.flushed, this.buffer.subarray(0, this.filled));
    this.flushed += this.filled;
    this.filled = 0;
    // A stream may still hold the bytes it was given after write() returns: never reuse them.
    if (this.sink.sequential) this.buffer = Buffer.allocUnsafe(BUFFER_SIZE);
  }
}
