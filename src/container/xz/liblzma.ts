/**
 * The few liblzma calls platter needs: a .xz stream decoder fed piece by
 * piece (each block is decoded as a one-block stream, so liblzma checks its
 * header, its check and its sizes), a raw LZMA2 encoder (platter writes the
 * block around its output), and CRC64. Every call runs on koffi's thread
 * pool. Decoders and encoders are started again on the same lzma_stream for
 * each block, so liblzma keeps its memory (an encoder at -6 is 40 MiB of
 * tables: allocated afresh per block, that is 10,000 page faults each).
 * Structures are plain Buffers laid out as liblzma's headers define them on
 * 64-bit Linux (lzma_stream 136 bytes, lzma_options_lzma 112, lzma_filter 16).
 */
import { addressOf } from "../../util/koffi.js";
import { callAsync, lazyLibrary, sizeResult, type NativeFunction } from "../native-library.js";

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
  rawEncoder: NativeFunction;
  rawEncoderMemusage: NativeFunction;
  code: NativeFunction;
  end: NativeFunction;
  memusage: NativeFunction;
  lzmaPreset: NativeFunction;
  blockBufferBound: NativeFunction;
  crc64: NativeFunction;
}

const load = lazyLibrary({ sonames: ["liblzma.so.5"], what: "xz", debianPackage: "liblzma5" }, (lib): Api => ({
    streamDecoder: lib.func("int lzma_stream_decoder(void *strm, uint64_t memlimit, uint32_t flags)"),
    rawEncoder: lib.func("int lzma_raw_encoder(void *strm, void *filters)"),
    rawEncoderMemusage: lib.func("uint64_t lzma_raw_encoder_memusage(void *filters)"),
    code: lib.func("int lzma_code(void *strm, int action)"),
    end: lib.func("void lzma_end(void *strm)"),
    memusage: lib.func("uint64_t lzma_memusage(void *strm)"),
    lzmaPreset: lib.func("uint8_t lzma_lzma_preset(void *options, uint32_t preset)"),
    blockBufferBound: lib.func("size_t lzma_block_buffer_bound(size_t uncompressed_size)"),
    crc64: lib.func("uint64_t lzma_crc64(void *buf, size_t size, uint64_t crc)"),
}));

/** Throws when liblzma cannot be loaded, with a message naming the package. */
export function requireLzma(): void {
  load();
}

/** Point `strm` at input[inputStart...] and out[outStart...]. */
function setBuffers(strm: Buffer, input: Buffer, inputStart: number, out: Buffer, outStart: number): void {
  strm.writeBigUInt64LE(addressOf(input, inputStart), 0);
  strm.writeBigUInt64LE(BigInt(input.length - inputStart), 8);
  strm.writeBigUInt64LE(addressOf(out, outStart), 24);
  strm.writeBigUInt64LE(BigInt(out.length - outStart), 32);
}

/** Bytes of input consumed and output produced since setBuffers. */
function progress(strm: Buffer, input: Buffer, inputStart: number, out: Buffer, outStart: number): { consumed: number; produced: number } {
  return {
    consumed: input.length - inputStart - Number(strm.readBigUInt64LE(8)),
    produced: out.length - outStart - Number(strm.readBigUInt64LE(32)),
  };
}

/**
 * A .xz stream decoded piece by piece. `memoryLimit` caps what the decoder
 * may allocate (its dictionary, mostly); a stream that needs more fails
 * with MEMLIMIT_ERROR. restart() begins a new stream in the same memory.
 */
export class LzmaDecodeStream {
  private readonly a = load();
  /** lzma_stream, zeroed (LZMA_STREAM_INIT), at a stable address. */
  private readonly strm = Buffer.alloc(STREAM_SIZE);
  private open = false;

  constructor(readonly memoryLimit: number) {
    this.restart();
  }

  restart(): void {
    const ret = this.a.streamDecoder(addressOf(this.strm), BigInt(this.memoryLimit), 0) as number;
    if (ret !== LZMA.OK) throw new LzmaCallError(ret);
    this.open = true;
  }

  /**
   * Decode from input[inputStart...] into out[outStart...]; `finish` says no
   * input follows. `ended` is true once the stream's footer has been read
   * and every check has passed.
   */
  async step(input: Buffer, inputStart: number, out: Buffer, outStart: number, finish: boolean): Promise<{ consumed: number; produced: number; ended: boolean }> {
    setBuffers(this.strm, input, inputStart, out, outStart);
    const ret = await callAsync<number>(this.a.code, [addressOf(this.strm), finish ? FINISH : RUN], [this.strm, input, out]);
    const moved = progress(this.strm, input, inputStart, out, outStart);
    if (ret === LZMA.OK || ret === LZMA.STREAM_END) return { ...moved, ended: ret === LZMA.STREAM_END };
    // A BUF_ERROR with output space left means the input ran out: the stream is cut short.
    throw new LzmaCallError(ret, ret === LZMA.MEMLIMIT_ERROR ? Number(this.a.memusage(addressOf(this.strm))) : 0);
  }

  /** Bytes of memory the decoder holds. */
  memoryUsage(): number {
    return this.open ? Number(this.a.memusage(addressOf(this.strm))) : 0;
  }

  close(): void {
    if (this.open) this.a.end(addressOf(this.strm));
    this.open = false;
  }
}

/** LZMA2 options for `preset` (0-9) with the dictionary at most `dictionaryLimit`: an lzma_options_lzma. */
function lzma2Options(a: Api, preset: number, dictionaryLimit: number): Buffer {
  const options = Buffer.alloc(OPTIONS_SIZE);
  if (a.lzmaPreset(addressOf(options), preset)) throw new LzmaCallError(LZMA.OPTIONS_ERROR);
  // A dictionary larger than the block it compresses only costs memory (94 MiB per thread at -6).
  options.writeUInt32LE(Math.min(options.readUInt32LE(0), dictionaryLimit), 0);
  return options;
}

/**
 * Raw LZMA2 (the data of an .xz block, without its header, padding and
 * check), one block per call, in memory kept from block to block.
 */
export class Lzma2Encoder {
  private readonly a = load();
  private readonly strm = Buffer.alloc(STREAM_SIZE);
  private readonly options: Buffer;
  /** lzma_filter[2]: LZMA2 with `options`, then the LZMA_VLI_UNKNOWN terminator. */
  private readonly filters = Buffer.alloc(32);
  private open = false;

  constructor(preset: number, dictionaryLimit: number) {
    this.options = lzma2Options(this.a, preset, dictionaryLimit);
    this.filters.writeBigUInt64LE(FILTER_LZMA2, 0);
    this.filters.writeBigUInt64LE(addressOf(this.options), 8);
    this.filters.writeBigUInt64LE(VLI_UNKNOWN, 16);
  }

  /** Bytes of memory the encoder takes (47 MiB at -6 with a 4 MiB dictionary). */
  get memoryUsage(): number {
    return Number(this.a.rawEncoderMemusage(addressOf(this.filters)));
  }

  /** The dictionary size the encoder uses (what the block header's filter properties give). */
  get dictionarySize(): number {
    return this.options.readUInt32LE(0);
  }

  /** Compress `input` as one LZMA2 stream into `out`; resolves with its length. */
  async encode(input: Buffer, out: Buffer): Promise<number> {
    const init = this.a.rawEncoder(addressOf(this.strm), addressOf(this.filters)) as number;
    if (init !== LZMA.OK) throw new LzmaCallError(init);
    this.open = true;
    setBuffers(this.strm, input, 0, out, 0);
    const ret = await callAsync<number>(this.a.code, [addressOf(this.strm), FINISH], [this.strm, this.options, this.filters, input, out]);
    if (ret !== LZMA.STREAM_END) throw new LzmaCallError(ret === LZMA.OK ? LZMA.BUF_ERROR : ret);
    return progress(this.strm, input, 0, out, 0).produced;
  }

  close(): void {
    if (this.open) this.a.end(addressOf(this.strm));
    this.open = false;
  }
}

/** The most bytes a block of `size` bytes can take, header and check included. */
export function blockBound(size: number): number {
  return sizeResult(load().blockBufferBound(size) as number | bigint);
}

/** CRC64 (xz's, ECMA-182) of `data`, as its 8 little-endian bytes. */
export async function crc64(data: Buffer): Promise<Buffer> {
  const a = load();
  const value = await callAsync<number | bigint>(a.crc64, [addressOf(data), data.length, 0], [data]);
  const out = Buffer.alloc(8);
  out.writeBigUInt64LE(BigInt(value));
  return out;
}
