/**
 * The system zlib (libz.so.1) through koffi, for the one thing Node's zlib
 * cannot do: inflate with Z_BLOCK and report `data_type`, which says when
 * inflate stands at a deflate block boundary and how many bits of the last
 * byte it used. That is what a zran-style index needs (index-pass.ts). All
 * decoding after that is Node's zlib (span-decoder.ts).
 *
 * The z_stream lives in memory koffi allocates (it holds pointers between
 * calls, so a JS buffer that the GC may move cannot back it), as do the input
 * and output buffers it points into. Each inflate() runs on koffi's worker
 * threads: the event loop stays free while a large stream is indexed.
 *
 * The library is loaded with RTLD_DEEPBIND (native-library.ts says why).
 *
 * Why not pako (pure JS, deps.md): the same pass ran at 79 MB/s there and
 * at ~330 MB/s through libz, on a 100 MB disk-like image.
 *
 * Returns undefined where koffi or libz cannot load; the gzip reader then
 * reads sequentially (sequential-source.ts).
 */
import { promisify } from "node:util";
import { UnsupportedError } from "../../errors.js";
import { koffi, lazyLibrary } from "../native-library.js";

export const Z_NO_FLUSH = 0;
export const Z_BLOCK = 5;
export const Z_OK = 0;
export const Z_STREAM_END = 1;
export const Z_BUF_ERROR = -5;
export const Z_DATA_ERROR = -3;

/** zlib.h's z_stream on LP64 (Linux x86-64, arm64): pointers and longs are 8 bytes. */
const Z_STREAM_SIZE = 112;
const NEXT_IN = 0;
const AVAIL_IN = 8;
const NEXT_OUT = 24;
const AVAIL_OUT = 32;
const MSG = 48;
const DATA_TYPE = 88;

type Koffi = NonNullable<ReturnType<typeof koffi>>;

const load = lazyLibrary({ sonames: ["libz.so.1"], what: "indexing .gz images", debianPackage: "zlib1g", deep: true }, (lib) => {
  if (process.platform !== "linux" || process.arch === "ia32" || process.arch === "arm") {
    throw new UnsupportedError("indexing .gz images needs a 64-bit Linux (z_stream is laid out as there)");
  }
  const inflate = lib.func("int inflate(void *strm, int flush)");
  return {
    koffi: koffi() as Koffi,
    version: lib.func("const char *zlibVersion()")() as string,
    inflateInit2: lib.func("int inflateInit2_(void *strm, int windowBits, const char *version, int stream_size)"),
    inflate: promisify(inflate.async) as (strm: unknown, flush: number) => Promise<number>,
    inflateReset: lib.func("int inflateReset(void *strm)"),
    inflateEnd: lib.func("int inflateEnd(void *strm)"),
  };
});
type Libz = ReturnType<typeof load>;

/** Native memory of `length` bytes and a Buffer over it (no copy). */
interface NativeBuffer {
  pointer: unknown;
  address: bigint;
  buffer: Buffer;
}

/**
 * A gzip inflater (windowBits 31: gzip wrapper, CRC-32 and ISIZE checked by
 * zlib) over native input and output buffers. Fill `input` and call
 * setInput(); `output` is where inflate writes, from `outputAt`.
 */
export class GzipInflater {
  readonly input: Buffer;
  readonly output: Buffer;
  private readonly view: DataView;
  private ended = false;

  private constructor(
    private readonly z: Libz,
    private readonly strm: NativeBuffer,
    private readonly inputMemory: NativeBuffer,
    private readonly outputMemory: NativeBuffer,
  ) {
    this.input = inputMemory.buffer;
    this.output = outputMemory.buffer;
    this.view = new DataView(strm.buffer.buffer, strm.buffer.byteOffset, Z_STREAM_SIZE);
  }

  /** undefined when libz cannot be used here. */
  static open(inputSize: number, outputSize: number): GzipInflater | undefined {
    let z: Libz;
    try {
      z = load();
    } catch (err) {
      if (err instanceof UnsupportedError) return undefined;
      throw err;
    }
    const native = (length: number): NativeBuffer => {
      const pointer = z.koffi.alloc("uint8_t", length);
      return { pointer, address: z.koffi.address(pointer), buffer: Buffer.from(z.koffi.view(pointer, length)) };
    };
    const strm = native(Z_STREAM_SIZE);
    strm.buffer.fill(0);
    const inflater = new GzipInflater(z, strm, native(inputSize), native(outputSize));
    const rc = z.inflateInit2(strm.pointer, 31, z.version, Z_STREAM_SIZE) as number;
    if (rc !== Z_OK) {
      inflater.freeMemory();
      return undefined;
    }
    return inflater;
  }

  /** Inflate from input[from, from+length). */
  setInput(from: number, length: number): void {
    this.view.setBigUint64(NEXT_IN, this.inputMemory.address + BigInt(from), true);
    this.view.setUint32(AVAIL_IN, length, true);
  }

  /** Inflate into output[from, from+length). */
  setOutput(from: number, length: number): void {
    this.view.setBigUint64(NEXT_OUT, this.outputMemory.address + BigInt(from), true);
    this.view.setUint32(AVAIL_OUT, length, true);
  }

  get availIn(): number {
    return this.view.getUint32(AVAIL_IN, true);
  }

  get availOut(): number {
    return this.view.getUint32(AVAIL_OUT, true);
  }

  /** Unused bits in the last input byte (low 3 bits), +64 in the last block, +128 just after a block or the header. */
  get dataType(): number {
    return this.view.getInt32(DATA_TYPE, true);
  }

  /** zlib's message for the last error ("incorrect data check"...). */
  get message(): string {
    const pointer = this.view.getBigUint64(MSG, true);
    if (pointer === 0n) return "";
    return String(this.z.koffi.decode(this.strm.pointer, MSG, "const char *") ?? "");
  }

  inflate(flush: number): Promise<number> {
    return this.z.inflate(this.strm.pointer, flush);
  }

  /** Ready for the next gzip member. */
  reset(): void {
    this.z.inflateReset(this.strm.pointer);
  }

  close(): void {
    if (this.ended) return;
    this.ended = true;
    this.z.inflateEnd(this.strm.pointer);
    this.freeMemory();
  }

  private freeMemory(): void {
    for (const memory of [this.strm, this.inputMemory, this.outputMemory]) this.z.koffi.free(memory.pointer);
  }
}
