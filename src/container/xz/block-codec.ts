/**
 * Decoding one .xz block (a Frame of readXzBlocks: `detail` its unpadded
 * size, `tag` its check type). liblzma decodes streams, so each block is given to
 * it as a stream of its own: a stream header with the block's check type,
 * the block's bytes as they are in the file, and an index and footer made
 * from the file's index record. liblzma then checks everything xz checks:
 * the block header's CRC32, the data, the block's check (CRC32, CRC64,
 * SHA-256), and that the block's sizes are the ones the file's index gives.
 */
import { CorruptImageError, UnsupportedError } from "../../errors.js";
import type { CompressedInput, Frame, FrameCodec, FrameStream } from "../framed-source.js";
import { SteppedFrameStream, type DecodeStep } from "../stepped-frame-stream.js";
import { encodeIndexField } from "./index-field.js";
import { LZMA, LzmaCallError, LzmaDecodeStream } from "./liblzma.js";
import { encodeStreamFooter } from "./stream-footer.js";
import { encodeStreamHeader } from "./stream-header.js";

export class XzBlockCodec implements FrameCodec {
  constructor(
    readonly name: string,
    /** Most memory one decoder may take (its dictionary, mostly). */
    readonly memoryLimit: number,
  ) {}

  async decodeWhole(block: Frame, input: Buffer, out: Buffer): Promise<void> {
    const stream = this.openStream(block, [input]);
    try {
      let filled = 0;
      while (filled < out.length) {
        const n = await stream.read(out.subarray(filled));
        if (n === 0) throw this.corrupt(block, `it ends after ${filled} bytes, the index says ${block.size}`);
        filled += n;
      }
      if ((await stream.read(Buffer.allocUnsafe(1))) !== 0) throw this.corrupt(block, `it holds more than the ${block.size} bytes the index says`);
    } finally {
      stream.close();
    }
  }

  openStream(block: Frame, input: CompressedInput | Buffer[]): FrameStream {
    return new XzBlockStream(this, block, new BlockInput(block, input));
  }

  corrupt(block: Frame, why: string): CorruptImageError {
    return new CorruptImageError(`${this.name}: corrupt xz block at offset ${block.offset}: ${why}`);
  }

  /** A liblzma failure as platter's error. */
  failure(block: Frame, err: unknown): unknown {
    if (!(err instanceof LzmaCallError)) return err;
    switch (err.code) {
      case LZMA.MEMLIMIT_ERROR:
        return new UnsupportedError(
          `${this.name}: xz block at offset ${block.offset} needs ${Math.ceil(err.memoryNeeded / 2 ** 20)} MiB to decode; platter allows ${this.memoryLimit / 2 ** 20} MiB per block: decompress it with xz -d`,
        );
      case LZMA.OPTIONS_ERROR:
      case LZMA.FORMAT_ERROR:
        return new UnsupportedError(`${this.name}: xz block at offset ${block.offset} uses filters or options liblzma does not support`);
      case LZMA.MEM_ERROR:
        return new UnsupportedError(`${this.name}: not enough memory to decode the xz block at offset ${block.offset}`);
      case LZMA.BUF_ERROR:
        return this.corrupt(block, "it is cut short");
      default:
        return this.corrupt(block, `${err.message} (or its check or sizes do not match)`);
    }
  }
}

/** The bytes liblzma is fed for one block, in order: a stream header, the block, an index and footer for it. */
class BlockInput {
  private stage: "header" | "block" | "trailer" | "done" = "header";
  private readonly parts: Buffer[];

  constructor(
    block: Frame,
    private readonly input: CompressedInput | Buffer[],
  ) {
    const index = encodeIndexField([{ unpaddedSize: block.detail, uncompressedSize: block.size }], 1);
    this.parts = [encodeStreamHeader(block.tag), Buffer.concat([index, encodeStreamFooter(index.length, block.tag)])];
  }

  /** The next piece of input, or undefined once the trailer has been handed out. */
  async next(): Promise<Buffer | undefined> {
    switch (this.stage) {
      case "header":
        this.stage = "block";
        return this.parts[0];
      case "block": {
        const chunk = Array.isArray(this.input) ? this.input.shift() : await this.input.next();
        if (chunk) return chunk;
        this.stage = "done";
        return this.parts[1];
      }
      default:
        return undefined;
    }
  }

  get last(): boolean {
    return this.stage === "done";
  }
}

class XzBlockStream extends SteppedFrameStream {
  private readonly decoder: LzmaDecodeStream;
  private closed = false;

  constructor(
    private readonly codec: XzBlockCodec,
    private readonly block: Frame,
    private readonly input: BlockInput,
  ) {
    super(input);
    try {
      this.decoder = takeDecoder(codec.memoryLimit);
    } catch (err) {
      throw codec.failure(block, err);
    }
  }

  protected async step(chunk: Buffer, chunkPos: number, out: Buffer, outPos: number): Promise<DecodeStep> {
    try {
      return await this.decoder.step(chunk, chunkPos, out, outPos, this.input.last);
    } catch (err) {
      throw this.codec.failure(this.block, err);
    }
  }

  protected cutShort(): CorruptImageError {
    return this.codec.corrupt(this.block, "it is cut short");
  }

  close(): void {
    if (!this.closed) giveDecoder(this.decoder);
    this.closed = true;
  }
}

/**
 * Decoders kept for the next block: liblzma keeps a decoder's dictionary when
 * it starts a new stream, so a block decoded in it touches no fresh memory.
 * Only a few small ones are kept (an xz -9 dictionary is 64 MiB).
 */
const idleDecoders: LzmaDecodeStream[] = [];
const MAX_IDLE_DECODERS = 2;
const MAX_IDLE_DECODER_MEMORY = 24 << 20;

function takeDecoder(memoryLimit: number): LzmaDecodeStream {
  const i = idleDecoders.findIndex((d) => d.memoryLimit === memoryLimit);
  if (i < 0) return new LzmaDecodeStream(memoryLimit);
  const [decoder] = idleDecoders.splice(i, 1) as [LzmaDecodeStream];
  decoder.restart();
  return decoder;
}

function giveDecoder(decoder: LzmaDecodeStream): void {
  if (idleDecoders.length < MAX_IDLE_DECODERS && decoder.memoryUsage() <= MAX_IDLE_DECODER_MEMORY) idleDecoders.push(decoder);
  else decoder.close();
}
