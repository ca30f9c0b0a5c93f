/**
 * Large buffers used again instead of allocated afresh. A fresh buffer is
 * fresh pages, and the first touch of each page is a fault the kernel takes:
 * on the development VM under load, decoding into new memory took 1.3 s per
 * 64 MiB against 0.15 s into memory touched before. Decoders that fill a
 * frame's worth of memory per call take their buffers here and give them
 * back when the frame leaves their cache.
 *
 * Fresh memory comes in slabs of SLAB bytes backed by huge pages where the
 * kernel gives them (io/aligned.ts), so even that first touch is one fault
 * per 2 MiB: a 1 MiB frame buffer alone could never sit on a huge page.
 */
import { allocAligned, allocHuge } from "../io/aligned.js";

const MIN_CLASS = 64 << 10;
const SLAB = 4 << 20;

/** A piece of memory the pool hands out: `size` bytes of `store` from `offset`. */
interface Block {
  readonly store: ArrayBuffer;
  readonly offset: number;
  readonly size: number;
}

export class BufferPool {
  private readonly idle = new Map<number, Block[]>();
  /** Every block handed out, by its memory and where it starts there. */
  private readonly blocks = new WeakMap<ArrayBufferLike, Map<number, Block>>();
  private readonly waiting = new WeakSet<Block>();
  private idleBytes = 0;
  /** The slab smaller blocks are cut from, and how much of it is cut. */
  private slab: { memory: Buffer; used: number } | undefined;

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
    const block = this.idle.get(size)?.pop();
    if (block) {
      this.waiting.delete(block);
      this.idleBytes -= size;
      return Buffer.from(block.store, block.offset, length);
    }
    const fresh = this.fresh(size);
    const store = fresh.buffer as ArrayBuffer;
    let known = this.blocks.get(store);
    if (!known) this.blocks.set(store, (known = new Map()));
    known.set(fresh.byteOffset, { store, offset: fresh.byteOffset, size });
    return fresh.subarray(0, length);
  }

  /**
   * Give back a buffer take() returned, once nothing reads it any more. It is
   * reused only after the current turn of the event loop, so a reader still
   * copying out of it in a pending continuation finishes first.
   */
  give(buf: Buffer): void {
    const block = this.blocks.get(buf.buffer)?.get(buf.byteOffset);
    if (!block || this.waiting.has(block)) return;
    this.waiting.add(block);
    setImmediate(() => {
      if (this.idleBytes + block.size > this.maxIdleBytes) return;
      let list = this.idle.get(block.size);
      if (!list) this.idle.set(block.size, (list = []));
      list.push(block);
      this.idleBytes += block.size;
    });
  }

  clear(): void {
    this.idle.clear();
    this.idleBytes = 0;
    this.slab = undefined;
  }

  /** `size` bytes never handed out: cut from the slab, or on their own when a slab is not larger. */
  private fresh(size: number): Buffer {
    if (size >= SLAB) return this.allocate(size);
    if (!this.slab || this.slab.used + size > SLAB) this.slab = { memory: this.allocate(SLAB), used: 0 };
    const piece = this.slab.memory.subarray(this.slab.used, this.slab.used + size);
    this.slab.used += size;
    return piece;
  }

  private allocate(size: number): Buffer {
    return this.options.aligned ? allocAligned(size) : allocHuge(size);
  }
}

/** Powers of two from 64 KiB: a buffer serves every length of its class. */
function sizeClass(length: number): number {
  let size = MIN_CLASS;
  while (size < length) size *= 2;
  return size;
}
