/**
 * `platter dd`: GNU dd's semantics, for people with dd in their fingers.
 * One read(2) per record, so a short read is a partial record; count/skip/
 * seek count `bs` blocks; the output is truncated at seek*bs unless
 * conv=notrunc; conv=noerror goes on after a read error, skipping the rest
 * of the block (with conv=sync: every short or failed read is padded with
 * zeros to bs, as dd does); conv=sparse seeks over all-zero output blocks.
 *
 * dd loses every readable byte that shares a block with a bad sector. After
 * the copy, the failed blocks are probed sector by sector (the trimming and
 * scraping of `capture`) to say how many readable bytes dd semantics dropped.
 */
import { promises as fsp } from "node:fs";
import type { BlockSink, BlockSource } from "../io/block-source.js";
import { FileSink, StreamSink } from "../io/file-sink.js";
import { openSource } from "../io/file-source.js";
import { isAllZero } from "../io/zeros.js";
import { DeviceError } from "../errors.js";
import { Copier, isReadError } from "./copier.js";
import type { DdOperands } from "./dd-operands.js";
import type { ImageTarget } from "./image-writer.js";
import { RescueMap } from "./rescue-map.js";

export interface DdRecords {
  full: number;
  partial: number;
}

export interface DdResult {
  recordsIn: DdRecords;
  recordsOut: DdRecords;
  bytesIn: number;
  bytesOut: number;
  seconds: number;
  /** Input blocks that failed to read, as [offset, length]. */
  failedBlocks: Array<[number, number]>;
  /** Without conv=noerror: the input offset of the read error that stopped the copy. */
  stoppedAt?: number;
  /** Input bytes that were never copied because dd stopped. */
  bytesNotCopied: number;
  /**
   * With conv=sync, the first input offset whose bytes landed at the wrong
   * output offset (dd's misalignment after a short read followed by an
   * error), and how far off they landed.
   */
  shiftedAt?: number;
  shiftBytes?: number;
  /** Readable bytes inside the failed blocks (what `capture` would have kept); undefined if not probed. */
  readableInFailedBlocks?: number;
  interrupted: boolean;
}

export interface DdCallbacks {
  onProgress?: (bytesIn: number, total: number) => void;
  onReadError?: (offset: number, err: unknown) => void;
  onWarning?: (message: string) => void;
  signal?: AbortSignal;
  stdout?: NodeJS.WritableStream;
}

class NullTarget implements ImageTarget {
  async data(): Promise<void> {}
  async zeros(): Promise<void> {}
}

export async function runDd(ops: DdOperands, cb: DdCallbacks = {}): Promise<DdResult> {
  const started = Date.now();
  const source = await openSource(ops.input, { direct: ops.iflag.direct });
  let sink: BlockSink | undefined;
  try {
    const bs = ops.bs;
    let pos = ops.skip * bs;
    if (pos > source.size) {
      cb.onWarning?.(`dd: '${ops.input}': cannot skip to specified offset`);
      pos = source.size;
    }
    // Where `count` full records would end; short reads may stop it earlier.
    const end = ops.count === undefined ? source.size : Math.min(source.size, pos + ops.count * bs);
    let out = ops.seek * bs;
    let fileSink: FileSink | undefined;
    // Standard output redirected to a file or device can seek, as dd's own fd 1 can.
    const output = ops.output ?? (!cb.stdout && (await seekableStdout()) ? "/proc/self/fd/1" : undefined);
    if (output === undefined) {
      if (out > 0) throw new DeviceError("dd: 'standard output': cannot seek: illegal seek", "ESPIPE");
      sink = new StreamSink(cb.stdout ?? process.stdout);
    } else {
      fileSink = await FileSink.open(output, { create: true, sparse: ops.conv.sparse, direct: ops.oflag.direct });
      sink = fileSink;
      if (fileSink.isRegularFile && !ops.conv.notrunc) await fileSink.setSize(out);
    }

    const result: DdResult = {
      recordsIn: { full: 0, partial: 0 },
      recordsOut: { full: 0, partial: 0 },
      bytesIn: 0,
      bytesOut: 0,
      seconds: 0,
      failedBlocks: [],
      bytesNotCopied: 0,
      interrupted: false,
    };
    const buf = Buffer.allocUnsafe(bs);
    const first = pos;
    let lastWasSeek = false;
    // GNU dd's loop: one read(2) per record; a short read is a partial record.
    let partread = 0;
    while (ops.count === undefined || result.recordsIn.full + result.recordsIn.partial < ops.count) {
      if (cb.signal?.aborted) {
        result.interrupted = true;
        break;
      }
      if (pos >= end) break;
      let n: number;
      try {
        n = await source.readOnce(pos, Math.min(bs, source.size - pos), buf);
        if (n === 0) break;
        pos += n;
        result.bytesIn += n;
      } catch (err) {
        if (!isReadError(err)) throw err;
        cb.onReadError?.(pos, err);
        // dd skips what is left of the block: all of it, or the rest after a short read.
        const bad = Math.min(bs - partread, source.size - pos);
        result.failedBlocks.push([pos, bad]);
        if (!ops.conv.noerror) {
          result.stoppedAt = pos;
          result.bytesNotCopied = end - pos;
          break;
        }
        pos += bad;
        if (!ops.conv.sync || partread > 0) continue; // dropped: later output moves up
        n = 0; // conv=sync: the failed block becomes a block of zeros
      }
      const read = n;
      if (n < bs) {
        result.recordsIn.partial++;
        partread = n;
        if (ops.conv.sync) {
          buf.fill(0, n, bs);
          n = bs;
        }
      } else {
        result.recordsIn.full++;
        partread = 0;
      }
      const block = buf.subarray(0, n);
      if (ops.conv.sparse && !sink.sequential && isAllZero(block)) {
        lastWasSeek = true;
      } else {
        await sink.write(out, block);
        lastWasSeek = false;
      }
      // Bytes read at input offset pos-read land at `out`: misplaced if the distances from the start differ.
      const drift = pos - read - first - (out - ops.seek * bs);
      if (ops.conv.sync && read > 0 && drift !== 0 && result.shiftedAt === undefined) {
        result.shiftedAt = pos - read;
        result.shiftBytes = drift;
      }
      out += n;
      result.bytesOut += n;
      if (n === bs) result.recordsOut.full++;
      else result.recordsOut.partial++;
      cb.onProgress?.(pos - first, end - first);
    }
    // A file that ends in a seeked-over block still has to reach its size.
    if (lastWasSeek && fileSink?.isRegularFile && output) {
      const { size } = await fsp.stat(output);
      if (size < out) await fileSink.setSize(out);
    }
    await sink.flush();
    if (ops.conv.noerror && result.failedBlocks.length > 0 && !result.interrupted) {
      result.readableInFailedBlocks = await readableBytes(ops.input, source, result.failedBlocks, cb.signal);
    }
    result.seconds = (Date.now() - started) / 1000;
    return result;
  } finally {
    await sink?.close();
    await source.close();
  }
}

async function seekableStdout(): Promise<boolean> {
  try {
    const st = await fsp.stat("/proc/self/fd/1");
    return st.isFile() || st.isBlockDevice();
  } catch {
    return false;
  }
}

/**
 * Readable bytes inside the failed blocks: trim and scrape them the way
 * `capture` would (devices through O_DIRECT, so a bad sector costs only
 * itself), keeping nothing.
 */
async function readableBytes(
  path: string,
  source: BlockSource & { isBlockDevice: boolean; direct: boolean },
  blocks: Array<[number, number]>,
  signal: AbortSignal | undefined,
): Promise<number> {
  const probe = source.isBlockDevice && !source.direct ? await openSource(path, { direct: true }) : source;
  try {
    const map = new RescueMap(source.size, "+");
    for (const [pos, len] of blocks) map.set(pos, pos + len, "*");
    const copier = new Copier(probe, probe, new NullTarget(), map, {
      blockSize: Math.max(...blocks.map(([, len]) => len)),
      sectorSize: source.sectorSize,
      retries: 0,
      start: 0,
      end: source.size,
      signal,
    });
    await copier.run();
    return blocks.reduce((n, [pos, len]) => n + map.bytes("+", pos, pos + len), 0);
  } finally {
    if (probe !== source) await probe.close();
  }
}
