/**
 * The chunks in flight, in aligned memory used again and again: an O_DIRECT
 * write or read takes them as they are (no copy through a staging buffer),
 * and reused pages cost no page faults (fresh 4 MiB buffers per chunk
 * tripled the time of a restore on a loaded machine). Sized for the window
 * of reads ahead plus the chunk being consumed; past that, plain memory.
 */
import { allocAlignedPool } from "../io/aligned.js";

export class ChunkBuffers {
  private readonly free: Buffer[];

  constructor(
    count: number,
    private readonly size: number,
  ) {
    this.free = allocAlignedPool(count, size);
  }

  /** A buffer of `length` bytes (at most the chunk size), uninitialised. */
  take(length: number): Buffer {
    return (this.free.pop() ?? Buffer.allocUnsafe(this.size)).subarray(0, length);
  }

  /** Back into the pool, once nothing reads or writes it any more. */
  give(chunk: Buffer): void {
    this.free.push(Buffer.from(chunk.buffer, chunk.byteOffset, this.size));
  }
}
