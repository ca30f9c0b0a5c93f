/**
 * Page-aligned scratch buffers for O_DIRECT reads. Node's Buffer allocations
 * are not sector-aligned (a direct read into them fails with EINVAL); the
 * backing store of a WebAssembly.Memory is page-aligned.
 */
const WASM_PAGE = 65536;

// Node has WebAssembly; the ES library typings we compile against do not declare it.
declare const WebAssembly: { Memory: new (descriptor: { initial: number }) => WasmMemory };
interface WasmMemory {
  readonly buffer: ArrayBuffer;
}

export class AlignedBuffer {
  private memory: WasmMemory | undefined;
  private view: Buffer = Buffer.alloc(0);

  /** A page-aligned buffer of at least `length` bytes; valid until the next call. */
  get(length: number): Buffer {
    if (this.view.length < length) {
      const pages = Math.ceil(length / WASM_PAGE);
      this.memory = new WebAssembly.Memory({ initial: pages });
      this.view = Buffer.from(this.memory.buffer);
    }
    return this.view.subarray(0, length);
  }
}
