/**
 * Decoding one zstd frame, whole or as a stream, with every claim about it
 * checked: its header against the index, its length, its checksums.
 */
import { CorruptImageError, UnsupportedError } from "../../errors.js";
import type { CompressedInput, Frame, FrameCodec, FrameStream } from "../framed-source.js";
import { SteppedFrameStream, type DecodeStep } from "../stepped-frame-stream.js";
import { CHECKSUM_SIZE, decodeFrameHeader, isSkippableMagic } from "./frame-header.js";
import { decompressFrame, ZSTD_ERROR, ZstdCallError, ZstdDecodeStream } from "./libzstd.js";

/** Largest window platter keeps for a frame decoded as a stream: 128 MiB, what `zstd --long` (27) needs and zstd's own default limit. */
export const WINDOW_LOG_MAX = 27;

/** A libzstd failure as platter's error: corrupt data, or a frame platter will not decode. */
export function zstdError(name: string, offset: number, err: unknown): unknown {
  if (!(err instanceof ZstdCallError)) return err;
  const where = `${name}: zstd frame at offset ${offset}`;
  switch (err.code) {
    case ZSTD_ERROR.windowTooLarge:
      return new UnsupportedError(
        `${where} needs a window larger than ${2 ** (WINDOW_LOG_MAX - 20)} MiB (zstd --long=28 or more); platter decodes windows up to that size: decompress it with zstd -d --long=31`,
      );
    case ZSTD_ERROR.dictionaryWrong:
      return new UnsupportedError(`${where} was compressed with a dictionary, which platter does not have`);
    case ZSTD_ERROR.memoryAllocation:
      return new UnsupportedError(`${where}: not enough memory to decode it`);
    default:
      return new CorruptImageError(`${name}: corrupt zstd frame at offset ${offset}: ${err.reason.toLowerCase()}`);
  }
}

export class ZstdFrameCodec implements FrameCodec {
  constructor(readonly name: string) {}

  async decodeWhole(frame: Frame, input: Buffer, out: Buffer): Promise<void> {
    this.checkHeader(frame, input);
    let n: number;
    try {
      n = await decompressFrame(input, out);
    } catch (err) {
      if (err instanceof ZstdCallError && err.code === ZSTD_ERROR.dstSizeTooSmall) throw this.corrupt(frame, `it holds more than the ${frame.size} bytes the index says`);
      throw zstdError(this.name, frame.offset, err);
    }
    if (n !== frame.size) throw this.corrupt(frame, `it holds ${n} bytes, the index says ${frame.size}`);
    this.checkTableChecksum(frame, input);
  }

  openStream(frame: Frame, input: CompressedInput): FrameStream {
    return new ZstdFrameStream(this, frame, input);
  }

  /** The frame's own header must be a zstd frame that agrees with the index. */
  checkHeader(frame: Frame, head: Buffer): void {
    if (head.length >= 4 && isSkippableMagic(head.readUInt32LE(0))) throw this.corrupt(frame, "it is a skippable frame, yet the index gives it data");
    const header = decodeFrameHeader(head);
    if (typeof header === "string") throw this.corrupt(frame, header);
    if (header.dictionaryId !== 0) {
      throw new UnsupportedError(`${this.name}: zstd frame at offset ${frame.offset} needs dictionary ${header.dictionaryId}, which platter does not have`);
    }
    if (header.contentSize !== undefined && header.contentSize !== frame.size) {
      throw this.corrupt(frame, `its header says ${header.contentSize} bytes, the index says ${frame.size}`);
    }
  }

  /** A frame with its own checksum ends with it: it must be the one the seek table gives (the frame's `detail`). */
  checkTableChecksum(frame: Frame, input: Buffer): void {
    if (Number.isNaN(frame.detail)) return;
    const header = decodeFrameHeader(input);
    if (typeof header === "string" || !header.hasChecksum) return;
    const own = input.readUInt32LE(input.length - CHECKSUM_SIZE);
    if (own !== frame.detail) {
      throw this.corrupt(frame, `its checksum 0x${own.toString(16)} is not the seek table's 0x${frame.detail.toString(16)}`);
    }
  }

  corrupt(frame: Frame, why: string): CorruptImageError {
    return new CorruptImageError(`${this.name}: corrupt zstd frame at offset ${frame.offset}: ${why}`);
  }
}

/** One frame decoded piece by piece, reading its compressed bytes as it goes. */
class ZstdFrameStream extends SteppedFrameStream {
  private readonly decoder = new ZstdDecodeStream(WINDOW_LOG_MAX);
  private started = false;

  constructor(
    private readonly codec: ZstdFrameCodec,
    private readonly frame: Frame,
    private readonly input: CompressedInput,
  ) {
    super(input);
  }

  protected override received(chunk: Buffer): void {
    if (this.started) return;
    this.started = true;
    this.codec.checkHeader(this.frame, chunk);
  }

  protected async step(chunk: Buffer, chunkPos: number, out: Buffer, outPos: number): Promise<DecodeStep> {
    try {
      const { consumed, produced, frameDone } = await this.decoder.step(chunk, chunkPos, out, outPos);
      return { consumed, produced, ended: frameDone };
    } catch (err) {
      throw zstdError(this.codec.name, this.frame.offset, err);
    }
  }

  protected override async endedAt(chunk: Buffer, chunkPos: number): Promise<void> {
    if (chunkPos < chunk.length || (await this.input.next())) {
      throw this.codec.corrupt(this.frame, `it ends at offset ${this.input.at - chunk.length + chunkPos}, before the ${this.frame.compressedSize} bytes the index gives it`);
    }
  }

  protected cutShort(): CorruptImageError {
    return this.codec.corrupt(this.frame, `it is cut short: its ${this.frame.compressedSize} bytes end inside it`);
  }

  close(): void {
    this.decoder.close();
  }
}
