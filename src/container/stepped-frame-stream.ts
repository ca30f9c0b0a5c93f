/**
 * A frame too large to hold, decoded a part at a time by a native stream
 * decoder (libzstd's ZSTD_decompressStream, liblzma's lzma_code) as its
 * compressed bytes come in: the loop both formats share. Each format says
 * how one step decodes, and what is wrong when the input runs out first.
 */
import type { CorruptImageError } from "../errors.js";
import type { FrameStream } from "./framed-source.js";

export interface DecodeStep {
  consumed: number;
  produced: number;
  /** The frame's last byte (and its checks) are done. */
  ended: boolean;
}

const NO_INPUT = Buffer.alloc(0);

export abstract class SteppedFrameStream implements FrameStream {
  private chunk: Buffer | undefined;
  private chunkPos = 0;
  private inputDone = false;
  private ended = false;

  constructor(private readonly source: { next(): Promise<Buffer | undefined> }) {}

  /** Decode from chunk[chunkPos...] into out[outPos...]. */
  protected abstract step(chunk: Buffer, chunkPos: number, out: Buffer, outPos: number): Promise<DecodeStep>;
  /** The input ran out before the frame ended. */
  protected abstract cutShort(): CorruptImageError;
  /** Each compressed chunk as it is read, before it is decoded. */
  protected received(_chunk: Buffer): void {}
  /** The frame ended at chunk[chunkPos]: what follows it, if anything, is checked here. */
  protected async endedAt(_chunk: Buffer, _chunkPos: number): Promise<void> {}

  async read(out: Buffer): Promise<number> {
    if (this.ended || out.length === 0) return 0;
    let produced = 0;
    while (produced === 0) {
      if (!this.inputDone && (!this.chunk || this.chunkPos === this.chunk.length)) {
        this.chunk = await this.source.next();
        this.chunkPos = 0;
        if (!this.chunk) this.inputDone = true;
        else this.received(this.chunk);
      }
      const chunk = this.chunk ?? NO_INPUT;
      const step = await this.step(chunk, this.chunkPos, out, produced);
      this.chunkPos += step.consumed;
      produced += step.produced;
      if (step.ended) {
        this.ended = true;
        await this.endedAt(chunk, this.chunkPos);
        break;
      }
      if (this.inputDone && step.consumed === 0 && step.produced === 0) throw this.cutShort();
    }
    return produced;
  }

  abstract close(): void;
}
