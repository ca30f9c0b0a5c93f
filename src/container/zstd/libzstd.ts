/**
 * The few libzstd calls platter needs: decode one frame whole, decode a
 * frame as a stream (frames too large to hold), compress one frame. Contexts
 * are pooled, one per call in flight; every call runs on koffi's thread pool.
 */
import { addressOf } from "../../util/koffi.js";
import { callAsync, lazyLibrary, sizeResult, type NativeFunction } from "../native-library.js";

/** ZSTD_d_windowLogMax, ZSTD_c_compressionLevel, ZSTD_c_contentSizeFlag, ZSTD_c_checksumFlag (zstd.h). */
const D_WINDOW_LOG_MAX = 100;
const C_COMPRESSION_LEVEL = 100;
const C_CONTENT_SIZE_FLAG = 200;
const C_CHECKSUM_FLAG = 201;
/** ZSTD_reset_session_only */
const RESET_SESSION = 1;
/** zstd_errors.h codes platter tells apart. */
export const ZSTD_ERROR = { windowTooLarge: 16, checksumWrong: 22, dictionaryWrong: 32, memoryAllocation: 64, dstSizeTooSmall: 70 } as const;

/** A libzstd call that failed: `code` is its ZSTD_ErrorCode, `reason` its ZSTD_getErrorName text. */
export class ZstdCallError extends Error {
  constructor(
    readonly code: number,
    readonly reason: string,
  ) {
    super(reason);
  }
}

interface Api {
  createDCtx: NativeFunction;
  freeDCtx: NativeFunction;
  dctxSetParameter: NativeFunction;
  dctxReset: NativeFunction;
  decompressDCtx: NativeFunction;
  decompressStream: NativeFunction;
  findFrameCompressedSize: NativeFunction;
  createCCtx: NativeFunction;
  freeCCtx: NativeFunction;
  cctxSetParameter: NativeFunction;
  compress2: NativeFunction;
  compressBound: NativeFunction;
  isError: NativeFunction;
  getErrorCode: NativeFunction;
  getErrorName: NativeFunction;
  minCLevel: NativeFunction;
  maxCLevel: NativeFunction;
}

const load = lazyLibrary({ sonames: ["libzstd.so.1"], what: "zstd", debianPackage: "libzstd1" }, (lib): Api => ({
    createDCtx: lib.func("void *ZSTD_createDCtx()"),
    freeDCtx: lib.func("size_t ZSTD_freeDCtx(void *dctx)"),
    dctxSetParameter: lib.func("size_t ZSTD_DCtx_setParameter(void *dctx, int param, int value)"),
    dctxReset: lib.func("size_t ZSTD_DCtx_reset(void *dctx, int reset)"),
    decompressDCtx: lib.func("size_t ZSTD_decompressDCtx(void *dctx, void *dst, size_t dstCapacity, void *src, size_t srcSize)"),
    decompressStream: lib.func("size_t ZSTD_decompressStream(void *zds, void *output, void *input)"),
    findFrameCompressedSize: lib.func("size_t ZSTD_findFrameCompressedSize(void *src, size_t srcSize)"),
    createCCtx: lib.func("void *ZSTD_createCCtx()"),
    freeCCtx: lib.func("size_t ZSTD_freeCCtx(void *cctx)"),
    cctxSetParameter: lib.func("size_t ZSTD_CCtx_setParameter(void *cctx, int param, int value)"),
    compress2: lib.func("size_t ZSTD_compress2(void *cctx, void *dst, size_t dstCapacity, void *src, size_t srcSize)"),
    compressBound: lib.func("size_t ZSTD_compressBound(size_t srcSize)"),
    isError: lib.func("unsigned int ZSTD_isError(size_t code)"),
    getErrorCode: lib.func("int ZSTD_getErrorCode(size_t code)"),
    getErrorName: lib.func("const char *ZSTD_getErrorName(size_t code)"),
    minCLevel: lib.func("int ZSTD_minCLevel()"),
    maxCLevel: lib.func("int ZSTD_maxCLevel()"),
}));

/** Throws when libzstd cannot be loaded, with a message naming the package. */
export function requireZstd(): void {
  load();
}

/** The size a call returned, or a ZstdCallError. */
function checked(a: Api, result: number | bigint): number {
  if (a.isError(result)) throw new ZstdCallError(a.getErrorCode(result) as number, a.getErrorName(result) as string);
  return sizeResult(result);
}

const idleDCtx: unknown[] = [];
const idleCCtx = new Map<string, unknown[]>();
/** Contexts kept for reuse: one per call in flight is all a pool needs. */
const MAX_IDLE = 8;

/**
 * Decode one whole frame (`input` is exactly the frame) into `out`, which is
 * exactly as large as the frame's content: a frame that holds more fails
 * (dstSize_tooSmall) instead of writing past it. Resolves with the bytes written.
 */
export async function decompressFrame(input: Buffer, out: Buffer): Promise<number> {
  const a = load();
  const dctx = idleDCtx.pop() ?? a.createDCtx();
  try {
    const result = await callAsync<number | bigint>(a.decompressDCtx, [dctx, addressOf(out), out.length, addressOf(input), input.length], [out, input]);
    return checked(a, result);
  } finally {
    if (idleDCtx.length < MAX_IDLE) {
      a.dctxReset(dctx, RESET_SESSION);
      idleDCtx.push(dctx);
    } else a.freeDCtx(dctx);
  }
}

/** The length of the frame `input` starts with (it may go on past it), or a ZstdCallError when it holds no whole frame. */
export function frameCompressedSize(input: Buffer): number {
  const a = load();
  return checked(a, a.findFrameCompressedSize(addressOf(input), input.length) as number | bigint);
}

/**
 * A frame decoded piece by piece, for frames too large to hold whole. The
 * window it may keep is capped at 2^windowLogMax bytes; a frame that needs
 * more fails with ZSTD_ERROR.windowTooLarge.
 */
export class ZstdDecodeStream {
  private readonly a = load();
  private dctx: unknown;
  /** ZSTD_inBuffer and ZSTD_outBuffer: { pointer, size_t size, size_t pos }. */
  private readonly inBuf = Buffer.alloc(24);
  private readonly outBuf = Buffer.alloc(24);

  constructor(windowLogMax: number) {
    this.dctx = this.a.createDCtx();
    checked(this.a, this.a.dctxSetParameter(this.dctx, D_WINDOW_LOG_MAX, windowLogMax));
  }

  /**
   * Decode from input[inputStart...] into out[outStart...]. `frameDone` is
   * true once the frame's last block and checksum have been read and all of
   * its bytes handed out.
   */
  async step(input: Buffer, inputStart: number, out: Buffer, outStart: number): Promise<{ consumed: number; produced: number; frameDone: boolean }> {
    this.inBuf.writeBigUInt64LE(addressOf(input), 0);
    this.inBuf.writeBigUInt64LE(BigInt(input.length), 8);
    this.inBuf.writeBigUInt64LE(BigInt(inputStart), 16);
    this.outBuf.writeBigUInt64LE(addressOf(out), 0);
    this.outBuf.writeBigUInt64LE(BigInt(out.length), 8);
    this.outBuf.writeBigUInt64LE(BigInt(outStart), 16);
    const result = await callAsync<number | bigint>(this.a.decompressStream, [this.dctx, addressOf(this.outBuf), addressOf(this.inBuf)], [this.outBuf, this.inBuf, input, out]);
    const hint = checked(this.a, result);
    return {
      consumed: Number(this.inBuf.readBigUInt64LE(16)) - inputStart,
      produced: Number(this.outBuf.readBigUInt64LE(16)) - outStart,
      frameDone: hint === 0,
    };
  }

  close(): void {
    if (this.dctx) this.a.freeDCtx(this.dctx);
    this.dctx = undefined;
  }
}

export interface CompressOptions {
  level: number;
  /** Store the content checksum (XXH64, low 32 bits) at the frame's end. */
  checksum: boolean;
}

export function compressBound(size: number): number {
  return sizeResult(load().compressBound(size) as number | bigint);
}

export function levelRange(): [number, number] {
  const a = load();
  return [a.minCLevel() as number, a.maxCLevel() as number];
}

/** Compress `input` as one frame with its content size into `out`; resolves with the frame's length. */
export async function compressFrame(input: Buffer, out: Buffer, options: CompressOptions): Promise<number> {
  const a = load();
  const key = `${options.level}/${options.checksum}`;
  const idle = idleCCtx.get(key) ?? [];
  idleCCtx.set(key, idle);
  let cctx = idle.pop();
  if (!cctx) {
    cctx = a.createCCtx();
    checked(a, a.cctxSetParameter(cctx, C_COMPRESSION_LEVEL, options.level));
    checked(a, a.cctxSetParameter(cctx, C_CONTENT_SIZE_FLAG, 1));
    checked(a, a.cctxSetParameter(cctx, C_CHECKSUM_FLAG, options.checksum ? 1 : 0));
  }
  try {
    const result = await callAsync<number | bigint>(a.compress2, [cctx, addressOf(out), out.length, addressOf(input), input.length], [out, input]);
    return checked(a, result);
  } finally {
    if (idle.length < MAX_IDLE) idle.push(cctx);
    else a.freeCCtx(cctx);
  }
}
