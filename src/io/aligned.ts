/**
 * Page-aligned buffers for O_DIRECT reads. Node's Buffer allocations are not
 * sector-aligned (a direct read into them fails with EINVAL); the backing
 * store of a WebAssembly.Memory is page-aligned. The ArrayBuffers made here
 * are remembered, so a reader can tell that a buffer it is handed may take a
 * direct read as it is, without a bounce through scratch memory. They are
 * shared memories (SharedArrayBuffers), so a worker thread can hash what was
 * read into them without a copy.
 *
 * Large ones are backed by huge pages where the kernel gives them: their
 * first touch is then one page fault per 2 MiB instead of one per 4 KiB.
 */
import { adviseHugePages, HUGE_PAGE, memoryAddress, toHugePageBoundary } from "./syscalls.js";

const WASM_PAGE = 65536;

// Node has WebAssembly; the ES library typings we compile against do not declare it.
declare const WebAssembly: { Memory: new (descriptor: { initial: number; maximum: number; shared: boolean }) => WasmMemory };
interface WasmMemory {
  readonly buffer: SharedArrayBuffer;
}

const alignedStores = new WeakSet<ArrayBufferLike>();
let available: boolean | undefined;

/**
 * Whether aligned memory can be had. V8 reserves several GiB of address
 * space for each WebAssembly memory, which a `ulimit -v` can forbid; then
 * sources and sinks do without O_DIRECT.
 */
export function alignedMemoryAvailable(): boolean {
  if (available === undefined) allocAligned(1);
  return available === true;
}

/**
 * A zero-filled buffer of `length` bytes whose first byte is 64 KiB-aligned;
 * a plain (unaligned) one where aligned memory cannot be had at all.
 */
export function allocAligned(length: number): Buffer {
  if (available !== false) {
    const pages = Math.max(1, Math.ceil(length / WASM_PAGE));
    try {
      const memory = new WebAssembly.Memory({ initial: pages, maximum: pages, shared: true });
      available = true;
      alignedStores.add(memory.buffer);
      const buf = Buffer.from(memory.buffer, 0, length);
      adviseHugePages(buf);
      return buf;
    } catch (err) {
      if (available) throw err; // it worked before: this is a real shortage
      available = false;
    }
  }
  return Buffer.alloc(length);
}

/**
 * `length` bytes of uninitialised memory whose 2 MiB-aligned part the kernel
 * is asked to back with huge pages (syscalls.ts adviseHugePages), for large
 * buffers that live long. Not page-aligned for O_DIRECT: allocAligned is.
 */
export function allocHuge(length: number): Buffer {
  if (length < HUGE_PAGE) return Buffer.allocUnsafeSlow(length);
  // Room to start at a 2 MiB boundary: the slack is address space, never touched, so never backed by memory.
  const room = Buffer.allocUnsafeSlow(length + HUGE_PAGE);
  const address = memoryAddress(room);
  const skip = address === undefined ? 0 : toHugePageBoundary(address);
  const buf = room.subarray(skip, skip + length);
  adviseHugePages(buf);
  return buf;
}

/** `count` buffers of `size` bytes, slices of one aligned memory (each aligned as `size` allows). */
export function allocAlignedPool(count: number, size: number): Buffer[] {
  const slab = allocAligned(count * size);
  return Array.from({ length: count }, (_, i) => slab.subarray(i * size, (i + 1) * size));
}

/** Whether `buf` starts at a multiple of `align` (a power of two up to 64 KiB) in memory. */
export function isAligned(buf: Buffer, align: number): boolean {
  return alignedStores.has(buf.buffer) && buf.byteOffset % align === 0;
}

/** A reusable aligned scratch buffer that grows on demand. */
export class AlignedBuffer {
  private view: Buffer = Buffer.alloc(0);

  /** A page-aligned buffer of at least `length` bytes; valid until the next call. */
  get(length: number): Buffer {
    if (this.view.length < length) this.view = allocAligned(Math.ceil(length / WASM_PAGE) * WASM_PAGE);
    return this.view.subarray(0, length);
  }
}
