/**
 * What restore wrote, one entry per chunk with its SHA-1 taken from the
 * very buffer handed to the write, so `--verify` reads TARGET back and
 * compares without reading (or decompressing) the image a second time.
 * Runs of zeros written out are kept as ranges: they must read back as zeros.
 * SHA-1, not SHA-256: this catches a device that lost or changed bytes, not
 * an adversary (who could write what they liked anyway), and an accidental
 * change slips past 160 bits with probability 2^-160; it hashes 3.5 times
 * faster here, and the hash is most of --verify's CPU.
 * 20 bytes per 4 MiB chunk: a 4 TB disk costs 20 MB.
 */
import { createHash } from "node:crypto";
import { DeviceError, InterruptedError } from "../errors.js";
import type { BlockSource } from "../io/block-source.js";
import { isAllZero } from "../io/zeros.js";
import { ChunkBuffers } from "./chunk-buffers.js";
import { byteHex } from "./compare.js";
import { OrderedWindow } from "../util/ordered-window.js";

interface Written {
  offset: number;
  length: number;
  /** SHA-1 of the bytes; null for zeros. */
  digest: Buffer | null;
}

const DIGEST = "sha1";
/** Pieces read back at once: a device answers several reads faster than one after another. */
const READ_AHEAD = 4;
/** The largest piece restore writes at once (its chunk): zero runs are logged in pieces this size too. */
const PIECE = 4 << 20;

export interface VerifyOptions {
  signal?: AbortSignal;
  interruptedBy?: () => NodeJS.Signals | undefined;
  onProgress?: (done: number, total: number) => void;
}

export class WrittenLog {
  private readonly written: Written[] = [];
  private total = 0;

  /** `keep` false: only count the bytes (no --verify, nothing to hash). */
  constructor(private readonly keep: boolean) {}

  get bytes(): number {
    return this.total;
  }

  add(offset: number, data: Buffer): void {
    this.total += data.length;
    if (!this.keep) return;
    this.written.push({ offset, length: data.length, digest: createHash(DIGEST).update(data).digest() });
  }

  addZeros(offset: number, length: number): void {
    this.total += length;
    if (!this.keep) return;
    for (let at = offset; at < offset + length; at += PIECE) {
      this.written.push({ offset: at, length: Math.min(PIECE, offset + length - at), digest: null });
    }
  }

  /**
   * Read every written range back from `target` (opened O_DIRECT by the
   * caller, so this is the device's answer and not the page cache's) and
   * throw at the first that differs, naming its first differing byte, found
   * by reading that one piece of `expected` again.
   */
  async verify(target: BlockSource, expected: BlockSource, options: VerifyOptions = {}): Promise<void> {
    let done = 0;
    const buffers = new ChunkBuffers(READ_AHEAD + 2, PIECE);
    const window = new OrderedWindow<{ piece: Written; same: boolean }>(READ_AHEAD, async ({ piece, same }) => {
      if (!same) await this.reportDifference(piece, target, expected);
      done += piece.length;
      options.onProgress?.(done, this.total);
    });
    for (const piece of this.written) {
      if (options.signal?.aborted) {
        await window.drain(); // no read left running on a device about to be closed
        throw new InterruptedError(`interrupted while verifying: ${target.name} was written but not checked`, options.interruptedBy?.());
      }
      await window.push(async () => {
        const back = await target.read(piece.offset, piece.length, buffers.take(piece.length));
        const same = piece.digest ? createHash(DIGEST).update(back).digest().equals(piece.digest) : isAllZero(back);
        buffers.give(back);
        return { piece, same };
      });
    }
    await window.drain();
  }

  private async reportDifference(piece: Written, target: BlockSource, expected: BlockSource): Promise<never> {
    const back = await target.read(piece.offset, piece.length);
    const wanted = piece.digest ? await expected.read(piece.offset, piece.length) : Buffer.alloc(piece.length);
    let i = 0;
    while (i < piece.length && back[i] === wanted[i]) i++;
    const at = piece.offset + i;
    const bytes = i < piece.length ? ` (wrote ${byteHex(wanted[i])}, read back ${byteHex(back[i])})` : "";
    throw new DeviceError(`verify failed: ${target.name} differs from the image at offset ${at}${bytes}; the device did not keep what was written`);
  }
}
