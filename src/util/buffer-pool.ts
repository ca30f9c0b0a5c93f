/**
 * Large buffers used again instead of allocated afresh. A fresh buffer is
 * fresh pages, and the first touch of each page is a fault the kernel takes:
 * on the development VM under load, decoding into new memory took 1.3 s per
 * 64 MiB against 0.15 s into memory touched before. Decoders that fill a
 * frame's worth of memory per call take their buffers here and give them
 * back when the frame leaves their cache.
 */
import { allocAligned } from "../io/aligned.js";

const MIN_CLASS = 64 << 10;

export class BufferPool {
  private readonly idle = new Map<number, ArrayBuffer[]>();
  private readonly ours = new WeakSet<ArrayBufferLike>();
  private readonly waiting = new WeakSet<ArrayBufferLike>();
  private idleBytes = 0;

  /**
   * At most `maxIdleBytes` wait here unused; more given back are left to the
   * garbage collector. `aligned`: page-aligned memory (io/aligned.ts), which
   * an O_DIRECT write takes as it is.
   */
  constructor(
    private readonly maxIdleBytes: number,
    private readonly options: { aligned?: boolean } = {},
  ) {}

  /** `length` bytes of uninitialised memory. */
  take(length: number): Buffer {
    const size = sizeClass(length);
    const store = this.idle.get(size)?.pop();
    if (store) {
      this.waiting.delete(store);
      this.idleBytes -= size;
      return Buffer.from(store, 0, length);
    }
    const fresh = this.options.aligned ? allocAligned(size) : Buffer.allocUnsafeSlow(size);
    this.ours.add(fresh.buffer);
    return fresh.subarray(0, length);
  }

  /**
   * Give back a buffer take() returned, once nothing reads it any more. It is
   * reused only after the current turn of the event loop, so a reader still
   * copying out of it in a pending continuation finishes first.
   */
  give(buf: Buffer): void {
    const store = buf.buffer;
    if (!this.ours.has(store) || this.waiting.has(store)) return;
    this.waiting.add(store);
    setImmediate(() => {
      if (this.idleBytes + store.byteLength > this.maxIdleBytes) return;
      let list = this.idle.get(store.byteLength);
      if (!list) this.idle.set(store.byteLength, (list = []));
      list.push(store as ArrayBuffer);
      this.idleBytes += store.byteLength;
    });
  }

  clear(): void {
    this.idle.clear();
    this.idleBytes = 0;
  }
}

/** Powers of two from 64 KiB: a buffer serves every length of its class. */
function sizeClass(length: number): number {
  let size = MIN_CLASS;
  while (size < length) size *= 2;
  return size;
}
