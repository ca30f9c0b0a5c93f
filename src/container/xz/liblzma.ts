/**
 * The few liblzma calls platter needs: a .xz stream decoder fed piece by
 * piece (each block is decoded as a one-block stream, so liblzma checks its
 * header, its check and its sizes), and a one-block stream encoder. Every
 * call runs on koffi's thread pool. Structures are plain Buffers laid out as
 * liblzma's headers define them on 64-bit Linux (lzma_stream 136 bytes,
 * lzma_options_lzma 112, lzma_filter 16).
 */
import { addressOf, callAsync, loadSystemLibrary, sizeResult, type NativeFunction } from "../native-library.js";

/** lzma_ret values. */
export const LZMA = {
  OK: 0,
  STREAM_END: 1,
  MEM_ERROR: 5,
  MEMLIMIT_ERROR: 6,
  FORMAT_ERROR: 7,
  OPTIONS_ERROR: 8,
  DATA_ERROR: 9,
  BUF_ERROR: 10,
} as const;
const RUN = 0;
const FINISH = 3;
export const CHECK_CRC64 = 4;
const FILTER_LZMA2 = 0x21n;
const VLI_UNKNOWN = 0xffffffffffffffffn;
const STREAM_SIZE = 136;
const OPTIONS_SIZE = 112;

const REASONS: Record<number, string> = {
  [LZMA.MEM_ERROR]: "cannot allocate memory",
  [LZMA.MEMLIMIT_ERROR]: "memory usage limit reached",
  [LZMA.FORMAT_ERROR]: "file format not recognized",
  [LZMA.OPTIONS_ERROR]: "unsupported options",
  [LZMA.DATA_ERROR]: "compressed data is corrupt",
  [LZMA.BUF_ERROR]: "unexpected end of input",
};

/** A liblzma call that failed: `code` is its lzma_ret, `reason` what xz says for it. */
export class LzmaCallError extends Error {
  constructor(
    readonly code: number,
    /** Bytes of memory the decoder wanted, for MEMLIMIT_ERROR. */
    readonly memoryNeeded = 0,
  ) {
    super(REASONS[code] ?? `liblzma error ${code}`);
  }
}

interface Api {
  streamDecoder: NativeFunction;
  code: NativeFunction;
  end: NativeFunction;
  memusage: NativeFunction;
  lzmaPreset: NativeFunction;
  streamBufferBound: NativeFunction;
  streamBufferEncode: NativeFunction;
}

let api: Api | undefined;

function load(): Api {
  if (api) return api;
  const lib = loadSystemLibrary("liblzma.so.5", "xz", "liblzma5");
  api = {
    streamDecoder: lib.func("int lzma_stream_decoder(void *strm, uint64_t memlimit, uint32_t flags)"),
    code: lib.func("int lzma_code(void *strm, int action)"),
    end: lib.func("void lzma_end(void *strm)"),
    memusage: lib.func("uint64_t lzma_memusage(void *strm)"),
    lzmaPreset: lib.func("uint8_t lzma_lzma_preset(void *options, uint32_t preset)"),
    streamBufferBound: lib.func("size_t lzma_stream_buffer_bound(size_t uncompressed_size)"),
    streamBufferEncode: lib.func(
      "int lzma_stream_buffer_encode(void *filters, int check, void *allocator, void *in, size_t in_size, void *out, void *out_pos, size_t out_size)",
    ),
  };
  return api;
}

/** Throws when liblzma cannot be loaded, with a message naming the package. */
export function requireLzma(): void {
  load();
}

/**
 * A .xz stream decoded piece by piece. `memoryLimit` caps what the decoder
 * may allocate (its dictionary, mostly); a stream that needs more fails
 * with MEMLIMIT_ERROR.
 */
export class LzmaDecodeStream {
  private readonly a = load();
  /** lzma_stream, zeroed (LZMA_STREAM_INIT), at a stable address. */
  private readonly strm = Buffer.alloc(STREAM_SIZE);
  private open = true;

  constructor(memoryLimit: number) {
    const ret = this.a.streamDecoder(addressOf(this.strm), BigInt(memoryLimit), 0) as number;
    if (ret !== LZMA.OK) throw new LzmaCallError(ret);
  }

  /**
   * Decode from input[inputStart...] into out[outStart...]; `finish` says no
   * input follows. `ended` is true once the stream's footer has been read
   * and every check has passed.
   */
  async step(input: Buffer, inputStart: number, out: Buffer, outStart: number, finish: boolean): Promise<{ consumed: number; produced: number; ended: boolean }> {
    const s = this.strm;
    s.writeBigUInt64LE(addressOf(input, inputStart), 0);
    s.writeBigUInt64LE(BigInt(input.length - inputStart), 8);
    s.writeBigUInt64LE(addressOf(out, outStart), 24);
    s.writeBigUInt64LE(BigInt(out.length - outStart), 32);
    const ret = await callAsync<number>(this.a.code, [addressOf(s), finish ? FINISH : RUN], [s, input, out]);
    const consumed = input.length - inputStart - Number(s.readBigUInt64LE(8));
    const produced = out.length - outStart - Number(s.readBigUInt64LE(32));
    if (ret === LZMA.OK || ret === LZMA.STREAM_END) return { consumed, produced, ended: ret === LZMA.STREAM_END };
    // A BUF_ERROR with output space left means the input ran out: the stream is cut short.
    throw new LzmaCallError(ret, ret === LZMA.MEMLIMIT_ERROR ? Number(this.a.memusage(addressOf(s))) : 0);
  }

  close(): void {
    if (this.open) this.a.end(addressOf(this.strm));
    this.open = false;
  }
}

export function streamBufferBound(size: number): number {
  return sizeResult(load().streamBufferBound(size) as number | bigint);
}

/**
 * Compress `input` as a one-block .xz stream (LZMA2 at `preset`, its
 * dictionary no larger than `dictionaryLimit`, CRC64 check) into `out`;
 * resolves with the stream's length.
 */
export async function encodeStream(input: Buffer, out: Buffer, preset: number, dictionaryLimit: number): Promise<number> {
  const a = load();
  const options = Buffer.alloc(OPTIONS_SIZE);
  if (a.lzmaPreset(addressOf(options), preset)) throw new LzmaCallError(LZMA.OPTIONS_ERROR);
  // A dictionary larger than the block it compresses only costs memory (94 MiB per thread at -6).
  options.writeUInt32LE(Math.min(options.readUInt32LE(0), dictionaryLimit), 0);
  const filters = Buffer.alloc(32);
  filters.writeBigUInt64LE(FILTER_LZMA2, 0);
  filters.writeBigUInt64LE(addressOf(options), 8);
  filters.writeBigUInt64LE(VLI_UNKNOWN, 16);
  const outPos = Buffer.alloc(8);
  const ret = await callAsync<number>(
    a.streamBufferEncode,
    [addressOf(filters), CHECK_CRC64, null, addressOf(input), input.length, addressOf(out), addressOf(outPos), out.length],
    [options, filters, outPos, input, out],
  );
  if (ret !== LZMA.OK) throw new LzmaCallError(ret);
  return Number(outPos.readBigUInt64LE(0));
}
