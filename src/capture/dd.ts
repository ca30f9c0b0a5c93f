/**
 * `platter dd`: GNU dd's semantics, for people with dd in their fingers.
 * One read(2) per record, so a short read is a partial record; count/skip/
 * seek count `bs` blocks; the output is truncated at seek*bs unless
 * conv=notrunc; conv=noerror goes on after a read error, skipping the rest
 * of the block (with conv=sync: every short or failed read is padded with
 * zeros to bs, as dd does); conv=sparse seeks over all-zero output blocks.
 *
 * if= may be a stream (a pipe, "-" for standard input, a character device):
 * it is read as dd reads one (see dd-input.ts), and of= may be a FIFO.
 *
 * dd loses every readable byte that shares a block with a bad sector. After
 * the copy, the failed blocks of a file or device are probed sector by
 * sector (the trimming and scraping of `capture`) to say how many readable
 * bytes dd semantics dropped.
 */
import { promises as fsp } from "node:fs";
import type { BlockSink } from "../io/block-source.js";
import { FileSink, isStreamOutput, openStreamSink, StreamSink } from "../io/file-sink.js";
import { type FileSource, openSource } from "../io/file-source.js";
import { readFull } from "../io/stream-source.js";
import { isAllZero } from "../io/zeros.js";
import { DeviceError, errnoCode, ioError, PlatterError, UsageError } from "../errors.js";
import { Copier, isReadError } from "./copier.js";
import { type DdInput, FileInput, openDdInput } from "./dd-input.js";
import type { DdOperands } from "./dd-operands.js";
import type { ImageTarget } from "./image-writer.js";
import { RescueMap } from "./rescue-map.js";
import { sameOrOverlapping } from "./safety.js";

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
  /** Input bytes that were never copied because dd stopped; undefined for a stream, whose end is unknown. */
  bytesNotCopied?: number;
  /**
   * With conv=sync, the first input offset whose bytes landed at the wrong
   * output offset (dd's misalignment after a short read followed by an
   * error), and how far off they landed.
   */
  shiftedAt?: number;
  shiftBytes?: number;
  /** Readable bytes inside the failed blocks (what `capture` would have kept); undefined if not probed. */
  readableInFailedBlocks?: number;
  /** The input was a stream: its read errors could not be skipped, probed or retried. */
  fromStream: boolean;
  /** conv=fsync / conv=fdatasync failed (GNU dd then reports and exits 1). */
  syncFailure?: PlatterError;
  interrupted: boolean;
}

export interface DdCallbacks {
  /** Input bytes read, of the total when it is known (not for a stream). */
  onProgress?: (bytesIn: number, total: number | undefined) => void;
  onReadError?: (offset: number, err: unknown) => void;
  onWarning?: (message: string) => void;
  signal?: AbortSignal;
  stdout?: NodeJS.WritableStream;
}

class NullTarget implements ImageTarget {
  async data(): Promise<void> {}
  async zeros(): Promise<void> {}
}

/** The block size GNU dd gathers output into when bs= is not given (its obs). */
const OUTPUT_BLOCK = 512;

export async function runDd(ops: DdOperands, cb: DdCallbacks = {}): Promise<DdResult> {
  const started = Date.now();
  const input = await openDdInput(ops.input, ops.iflag.direct, cb.signal);
  let sink: BlockSink | undefined;
  const result: DdResult = {
    recordsIn: { full: 0, partial: 0 },
    recordsOut: { full: 0, partial: 0 },
    bytesIn: 0,
    bytesOut: 0,
    seconds: 0,
    failedBlocks: [],
    bytesNotCopied: 0,
    fromStream: !(input instanceof FileInput),
    interrupted: false,
  };
  try {
    const bs = ops.bs;
    const outStart = ops.seek * bs;
    const { output, sink: opened } = await openOutput(ops, input, cb);
    sink = opened;
    const fileSink = sink instanceof FileSink ? sink : undefined;

    if (ops.skip > 0) {
      const skipped = await input.skip(ops.skip, bs, ops.iflag.fullblock);
      if (!skipped) cb.onWarning?.(`dd: '${ops.input}': cannot skip to specified offset`);
    }
    const first = input.position;
    // Where `count` full records would end; short reads may stop the copy earlier.
    const total = input.size === undefined ? (ops.count === undefined ? undefined : ops.count * bs) : Math.min(input.size - first, (ops.count ?? Infinity) * bs);
    const buf = Buffer.allocUnsafe(bs);
    let out = outStart;
    let lastWasSeek = false;
    // GNU dd warns once when a short read that was not the last one miscounts count= or skip= blocks.
    let warnPartial = ops.bsGiven && !ops.iflag.fullblock && (ops.skip > 0 || ops.count !== undefined || ops.iflag.direct || ops.oflag.direct);
    let previousRead = 0;
    // GNU dd's loop: one read(2) per record; a short read is a partial record.
    let partread = 0;
    while (ops.count === undefined || result.recordsIn.full + result.recordsIn.partial < ops.count) {
      if (cb.signal?.aborted) break;
      const at = input.position;
      if (input.size !== undefined && at >= input.size) break;
      let n: number;
      try {
        n = ops.iflag.fullblock ? await readFull(input, buf, bs) : await input.readOnce(buf, bs);
        if (n === 0) break;
        result.bytesIn += n;
        if (warnPartial && previousRead > 0 && previousRead < bs) {
          cb.onWarning?.(`dd: partial read (${previousRead} byte${previousRead === 1 ? "" : "s"}); suggest iflag=fullblock`);
          warnPartial = false;
        }
        previousRead = n;
      } catch (err) {
        if (cb.signal?.aborted) break;
        if (!isReadError(err)) throw err;
        cb.onReadError?.(at, err);
        // iflag=fullblock drops what the block read before the error, as GNU dd does.
        input.rewind(at);
        // dd skips what is left of the block: all of it, or the rest after a short read. A stream cannot skip.
        const bad = input.size === undefined ? bs - partread : Math.min(bs - partread, input.size - at);
        result.failedBlocks.push([at, bad]);
        if (!ops.conv.noerror) {
          result.stoppedAt = at;
          result.bytesNotCopied = input.size === undefined ? undefined : first + (total ?? 0) - at;
          break;
        }
        input.passBadBlock(bad);
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
      // Bytes read at input offset at..at+read land at `out`: misplaced if the distances from the start differ.
      const drift = input.position - read - first - (out - outStart);
      if (ops.conv.sync && read > 0 && drift !== 0 && result.shiftedAt === undefined) {
        result.shiftedAt = input.position - read;
        result.shiftBytes = drift;
      }
      out += n;
      result.bytesOut += n;
      if (n === bs) result.recordsOut.full++;
      else result.recordsOut.partial++;
      cb.onProgress?.(input.position - first, total);
    }
    result.interrupted = cb.signal?.aborted === true;
    if (!ops.bsGiven) result.recordsOut = gatheredRecords(result.bytesOut);
    // A file that ends in a seeked-over block still has to reach its size.
    if (lastWasSeek && fileSink?.isRegularFile && output) {
      const { size } = await fsp.stat(output);
      if (size < out) await fileSink.setSize(out);
    }
    // Only when asked, as GNU dd: the data (conv=fdatasync), and the metadata too (conv=fsync), on the disk before dd reports.
    if (ops.conv.fdatasync || ops.conv.fsync) result.syncFailure = await syncOutput(sink, ops.conv);
    if (ops.conv.noerror && result.failedBlocks.length > 0 && !result.interrupted && input instanceof FileInput) {
      result.readableInFailedBlocks = await readableBytes(ops.input, input.source, result.failedBlocks, cb.signal);
    }
    result.seconds = (Date.now() - started) / 1000;
    return result;
  } catch (err) {
    // A stream's open or read given up on at Ctrl-C, before the copy began.
    if (!cb.signal?.aborted || err instanceof PlatterError) throw err;
    result.interrupted = true;
    result.seconds = (Date.now() - started) / 1000;
    return result;
  } finally {
    await sink?.close();
    await input.close();
  }
}

/**
 * of= (or standard output) opened as dd opens it: a file is truncated at
 * seek= unless conv=notrunc; a pipe or FIFO cannot seek. Standard output
 * redirected to a file or device can seek, as dd's own fd 1 can. Refused
 * first: the input itself (see refuseOwnInput).
 */
async function openOutput(ops: DdOperands, input: DdInput, cb: DdCallbacks): Promise<{ output: string | undefined; sink: BlockSink }> {
  const output = ops.output ?? (!cb.stdout && (await seekableStdout()) ? "/proc/self/fd/1" : undefined);
  if (output !== undefined) await refuseOwnInput(ops, input, output);
  const outStart = ops.seek * ops.bs;
  if (output === undefined || (await isStreamOutput(output))) {
    if (outStart > 0) throw new DeviceError(`dd: '${output ?? "standard output"}': cannot seek: illegal seek`, "ESPIPE");
    return { output, sink: output === undefined ? new StreamSink(cb.stdout ?? process.stdout) : await openStreamSink(output, cb.signal) };
  }
  const sink = await FileSink.open(output, { create: true, sparse: ops.conv.sparse, direct: ops.oflag.direct });
  try {
    if (sink.isRegularFile && !ops.conv.notrunc) await sink.setSize(outStart);
  } catch (err) {
    await sink.close();
    throw err;
  }
  return { output, sink };
}

/** Records out as GNU dd counts them without bs=: the output gathered into full 512-byte blocks, and one partial. */
function gatheredRecords(bytes: number): DdRecords {
  return { full: Math.floor(bytes / OUTPUT_BLOCK), partial: bytes % OUTPUT_BLOCK > 0 ? 1 : 0 };
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
 * dd may write over its own input (any path to it: a symlink, a hard link,
 * /proc/self/fd) only where no byte is overwritten before it is read: the
 * output is not truncated first (conv=notrunc, or a device), and the writes
 * stay at or behind the reads (seek= at or before skip=: dd-style in-place
 * shifting), or clear of everything count= reads. Anything else destroys
 * the input; with seek= past skip= GNU dd even copies its own output again,
 * until the disk is full.
 */
async function refuseOwnInput(ops: DdOperands, input: DdInput, output: string): Promise<void> {
  const relation = await sameOrOverlapping(ops.input === "-" ? "/dev/stdin" : ops.input, output);
  if (relation === undefined) return;
  const name = ops.output ?? "standard output";
  if (relation === "overlap") throw new UsageError(`dd: refusing to write to ${name}: it overlaps the input ${ops.input}`);
  const truncates = !ops.conv.notrunc && !(input instanceof FileInput && input.source.isBlockDevice);
  if (truncates) {
    throw new UsageError(`dd: refusing to write to ${name}: it is the input ${ops.input}, which would be truncated before it is read (conv=notrunc keeps it)`);
  }
  const read = ops.skip * ops.bs;
  const write = ops.seek * ops.bs;
  const clear = ops.count !== undefined && write >= read + ops.count * ops.bs;
  if (!(input instanceof FileInput) || (write > read && !clear)) {
    throw new UsageError(
      `dd: refusing to write to ${name}: it is the input ${ops.input}, and writing at seek=${ops.seek} would overwrite bytes before they are read ` +
        "(in place, seek= must be at or before skip=, or past all that count= reads)",
    );
  }
}

/**
 * conv=fdatasync / conv=fsync, as GNU dd does them: fdatasync, and where it
 * fails, fsync after all. A pipe cannot be synced, and GNU dd fails then too.
 */
async function syncOutput(sink: BlockSink, conv: DdOperands["conv"]): Promise<PlatterError | undefined> {
  const failed = (how: string, err: unknown) => ioError(err instanceof PlatterError && err.cause ? err.cause : err, `dd: ${how} failed for '${sink.name}'`);
  if (!(sink instanceof FileSink)) return failed("fsync", Object.assign(new Error("a pipe cannot be synced"), { code: "EINVAL" }));
  let failure: PlatterError | undefined;
  let fsync = conv.fsync;
  if (conv.fdatasync) {
    try {
      await sink.flush();
    } catch (err) {
      if (!["EINVAL", "ENOSYS"].includes(errnoCode(err) ?? "")) failure = failed("fdatasync", err);
      fsync = true;
    }
  }
  if (fsync) {
    try {
      await sink.sync();
    } catch (err) {
      return failed("fsync", err);
    }
  }
  return failure;
}

/**
 * Readable bytes inside the failed blocks: trim and scrape them the way
 * `capture` would (devices through O_DIRECT, so a bad sector costs only
 * itself), keeping nothing.
 */
async function readableBytes(
  path: string,
  source: FileSource,
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
