/**
 * The system zlib (libz.so.1) through koffi, for two things Node's zlib
 * cannot do:
 * - inflate with Z_BLOCK and report `data_type`, which says when inflate
 *   stands at a deflate block boundary and how many bits of the last byte it
 *   used. That is what a zran-style index needs (index-pass.ts). Spans
 *   that start inside a member are decoded by Node's zlib after that
 *   (span-decoder.ts).
 * - deflate a member straight into the writer's buffer with a deflater kept
 *   from member to member (deflateReset): Node's zlib.gzip() sets up a new
 *   stream per call (fresh window memory, output gathered in 16 KiB chunks
 *   and joined), which cost 0.2-0.6 s of CPU per 64 MiB of 256 KiB members
 *   on top of the 1.0 s of deflating itself.
 * - the same the other way: whole members inflated straight into a reader's
 *   buffer by an inflater kept from member to member.
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
import { UnsupportedError } from "../../errors.js";
import { callAsync, lazyLibrary, type NativeFunction } from "../native-library.js";
import { addressOf, type Koffi, loadKoffi } from "../../util/koffi.js";

export const Z_NO_FLUSH = 0;
export const Z_BLOCK = 5;
export const Z_OK = 0;
export const Z_STREAM_END = 1;
export const Z_BUF_ERROR = -5;
export const Z_DATA_ERROR = -3;
const Z_FINISH = 4;
const Z_DEFLATED = 8;
/** windowBits 15 plus 16: the gzip wrapper (header, CRC-32, ISIZE) around the deflate data. */
const GZIP_WINDOW_BITS = 31;
const DEFAULT_MEM_LEVEL = 8;
const Z_DEFAULT_STRATEGY = 0;

/** zlib.h's z_stream on LP64 (Linux x86-64, arm64): pointers and longs are 8 bytes. */
const Z_STREAM_SIZE = 112;
const NEXT_IN = 0;
const AVAIL_IN = 8;
const NEXT_OUT = 24;
const AVAIL_OUT = 32;
const MSG = 48;
const DATA_TYPE = 88;

const load = lazyLibrary({ sonames: ["libz.so.1"], what: "reading and writing .gz images with libz", debianPackage: "zlib1g", deep: true }, (lib) => {
  if (process.platform !== "linux" || process.arch === "ia32" || process.arch === "arm") {
    throw new UnsupportedError("libz is used on 64-bit Linux only (z_stream is laid out as there)");
  }
  return {
    koffi: loadKoffi() as Koffi,
    version: lib.func("const char *zlibVersion()")() as string,
    inflateInit2: lib.func("int inflateInit2_(void *strm, int windowBits, const char *version, int stream_size)"),
    inflate: lib.func("int inflate(void *strm, int flush)") as NativeFunction,
    inflateReset: lib.func("int inflateReset(void *strm)"),
    inflateEnd: lib.func("int inflateEnd(void *strm)"),
    deflateInit2: lib.func("int deflateInit2_(void *strm, int level, int method, int windowBits, int memLevel, int strategy, const char *version, int stream_size)"),
    deflate: lib.func("int deflate(void *strm, int flush)") as NativeFunction,
    deflateReset: lib.func("int deflateReset(void *strm)"),
    deflateEnd: lib.func("int deflateEnd(void *strm)"),
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
    const z = libzIfPresent();
    if (!z) return undefined;
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
    // Every buffer it points into is koffi's memory, held by this inflater.
    return callAsync<number>(this.z.inflate, [this.strm.pointer, flush], []);
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

/** A z_stream (native memory: zlib keeps pointers into it) and a view to set its buffers. */
interface ZStream {
  strm: unknown;
  view: DataView;
}

const idleDeflaters = new Map<number, ZStream[]>();
const idleInflaters: ZStream[] = [];
/** Streams kept for reuse: one per call in flight is all a reader or writer needs. */
const MAX_IDLE_STREAMS = 8;

/** A zeroed z_stream set up by `init` (deflateInit2_ or inflateInit2_ with its arguments); freed again if that fails. */
function newZStream(z: Libz, init: (strm: unknown) => number): ZStream {
  const strm = z.koffi.alloc("uint8_t", Z_STREAM_SIZE);
  const memory = Buffer.from(z.koffi.view(strm, Z_STREAM_SIZE));
  memory.fill(0);
  const rc = init(strm);
  if (rc !== Z_OK) {
    z.koffi.free(strm);
    throw new Error(`zlib stream setup failed (${rc})`);
  }
  return { strm, view: new DataView(memory.buffer, memory.byteOffset, Z_STREAM_SIZE) };
}

/** Point the stream at input[inputAt...] and out[outAt...]. */
function setBuffers({ view }: ZStream, input: Buffer, inputAt: number, out: Buffer, outAt: number): void {
  view.setBigUint64(NEXT_IN, addressOf(input, inputAt), true);
  view.setUint32(AVAIL_IN, input.length - inputAt, true);
  view.setBigUint64(NEXT_OUT, addressOf(out, outAt), true);
  view.setUint32(AVAIL_OUT, out.length - outAt, true);
}

/** Is the system libz there to inflate and deflate with (else Node's zlib does)? */
export function libzPresent(): boolean {
  return libzIfPresent() !== undefined;
}

/** The system libz, or undefined where it cannot be used (the caller then deflates with Node's zlib). */
function libzIfPresent(): Libz | undefined {
  try {
    return load();
  } catch (err) {
    if (err instanceof UnsupportedError) return undefined;
    throw err;
  }
}

/**
 * Deflate all of `input` as one gzip member (10-byte header, deflate data,
 * CRC-32 and ISIZE) into `out`, at `level`, on koffi's thread pool: the
 * member's length. undefined when libz is not there; an Error when `out` is
 * too small.
 */
export async function deflateGzipMember(input: Buffer, out: Buffer, level: number): Promise<number | undefined> {
  const z = libzIfPresent();
  if (!z) return undefined;
  let idle = idleDeflaters.get(level);
  if (!idle) idleDeflaters.set(level, (idle = []));
  let deflater = idle.pop();
  if (deflater) z.deflateReset(deflater.strm);
  else deflater = newZStream(z, (strm) => z.deflateInit2(strm, level, Z_DEFLATED, GZIP_WINDOW_BITS, DEFAULT_MEM_LEVEL, Z_DEFAULT_STRATEGY, z.version, Z_STREAM_SIZE) as number);
  setBuffers(deflater, input, 0, out, 0);
  try {
    const rc = await callAsync<number>(z.deflate, [deflater.strm, Z_FINISH], [input, out]);
    if (rc !== Z_STREAM_END) throw new Error(`zlib deflate did not finish a member of ${input.length} bytes in ${out.length} (${rc})`);
    return out.length - deflater.view.getUint32(AVAIL_OUT, true);
  } finally {
    // Once its call has settled, nothing points into the caller's buffers any more.
    if (idle.length < MAX_IDLE_STREAMS) idle.push(deflater);
    else {
      z.deflateEnd(deflater.strm);
      z.koffi.free(deflater.strm);
    }
  }
}

/** How inflating whole members into a buffer went. */
export type MembersInflated =
  | { ok: true }
  /** The members hold more than the buffer, or fewer bytes (`produced`), or zlib's message about bad data. */
  | { ok: false; more: true }
  | { ok: false; produced: number; message?: string };

/**
 * Inflate `input`, which must be whole gzip members and nothing else, into
 * all of `out`, each member's CRC-32 and ISIZE checked by zlib, on koffi's
 * thread pool. The caller knows libz is present (libzPresent()).
 */
export async function inflateGzipMembers(input: Buffer, out: Buffer): Promise<MembersInflated> {
  const z = load();
  const inflater = idleInflaters.pop() ?? newZStream(z, (strm) => z.inflateInit2(strm, GZIP_WINDOW_BITS, z.version, Z_STREAM_SIZE) as number);
  let consumed = 0;
  let produced = 0;
  try {
    for (;;) {
      setBuffers(inflater, input, consumed, out, produced);
      const rc = await callAsync<number>(z.inflate, [inflater.strm, Z_NO_FLUSH], [input, out]);
      consumed = input.length - inflater.view.getUint32(AVAIL_IN, true);
      produced = out.length - inflater.view.getUint32(AVAIL_OUT, true);
      if (rc === Z_STREAM_END) {
        z.inflateReset(inflater.strm);
        if (consumed === input.length) return produced === out.length ? { ok: true } : { ok: false, produced };
        // The next member, even with the buffer full: it may be empty (platter's end member is).
        continue;
      }
      if (rc === Z_OK || rc === Z_BUF_ERROR) {
        // Stopped inside a member: the buffer is full (more to come), or the input ran out (cut short).
        if (produced === out.length && consumed < input.length) return { ok: false, more: true };
        return { ok: false, produced };
      }
      const message = String(z.koffi.decode(inflater.strm, MSG, "const char *") ?? `zlib error ${rc}`);
      z.inflateReset(inflater.strm);
      return { ok: false, produced, message };
    }
  } finally {
    if (idleInflaters.length < MAX_IDLE_STREAMS) idleInflaters.push(inflater);
    else {
      z.inflateEnd(inflater.strm);
      z.koffi.free(inflater.strm);
    }
  }
}
