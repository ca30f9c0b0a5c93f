/**
 * Decode one span of an AccessIndex with Node's zlib (its inflate runs on
 * libuv's thread pool, so spans decode on every core at once), or, for a
 * span of whole members a read covers, with libz straight into the reader's
 * buffer (decodeSpanInto).
 *
 * - From a member point: gunzip the compressed bytes up to the next point.
 *   Ending at a member boundary, every member in the span is CRC-checked.
 * - From an inner point: raw inflate of deflatePreface(window, bits) and the
 *   bytes from the point on; the window's bytes come out first and are
 *   skipped.
 *
 * Output is bounded by the span's decoded length (known from the index):
 * decoding stops as soon as it has that many bytes, so a span can never
 * expand past what the index promised, whatever the data says.
 */
import { constants, createGunzip, createInflateRaw, type Gunzip, type InflateRaw } from "node:zlib";
import { CorruptImageError } from "../../errors.js";
import type { BlockSource } from "../../io/block-source.js";
import type { BufferPool } from "../../util/buffer-pool.js";
import { type AccessIndex, MEMBER } from "./access-index.js";
import { deflatePreface } from "./deflate-preface.js";
import { inflateGzipMembers, libzPresent } from "./libz.js";

/**
 * zlib hands output on in chunks of this many bytes at most: one chunk for a
 * whole span costs half the CPU of 64 KiB ones (fewer thread-pool trips).
 */
const MAX_OUTPUT_CHUNK = 4 << 20;

/** A span larger than this is not held whole: it is decoded a piece at a time (SpanCursor). */
export const LARGE_SPAN = 2 << 20;
export const PIECE = 1 << 20;

interface SpanStream {
  stream: Gunzip | InflateRaw;
  input: Buffer;
  /** Bytes of output before the span's first (an inner point's window). */
  skip: number;
  length: number;
  rules: InflateRules;
}

interface InflateRules {
  /** The input is whole members: it must decode to exactly `length` bytes. */
  exact: boolean;
  /** An error after `length` good bytes is the known damage, not a new one. */
  damagedTail: boolean;
  where: string;
}

/** The zlib stream and input that decode span i, output in chunks of at most `chunk` bytes. */
async function openSpan(source: BlockSource, index: AccessIndex, i: number, chunk: number): Promise<SpanStream> {
  const point = index.point(i);
  const length = index.spanEnd(i) - point.decoded;
  const end = index.spanCompressedEnd(i);
  const where = spanWhere(source, index, i);
  const damagedTail = isDamagedTail(index, i);
  if (point.kind === MEMBER) {
    const whole = index.spanEndsAtMember(i);
    const input = await source.read(point.compressed, end - point.compressed);
    return { stream: createGunzip(options(whole, length, chunk)), input, skip: 0, length, rules: { exact: whole, damagedTail, where } };
  }
  const from = point.bits ? point.compressed - 1 : point.compressed;
  const raw = await source.read(from, end - from);
  const window = point.window ?? Buffer.alloc(0);
  const preface = deflatePreface(window, point.bits, point.bits ? (raw[0] as number) : 0);
  const input = Buffer.concat([preface, point.bits ? raw.subarray(1) : raw]);
  const stream = createInflateRaw(options(false, window.length + length, chunk));
  return { stream, input, skip: window.length, length, rules: { exact: false, damagedTail, where } };
}

function options(whole: boolean, output: number, chunk: number) {
  // One byte over, so output past the expected length shows in the first chunk.
  const chunkSize = Math.min(Math.max(output + 1, constants.Z_MIN_CHUNK), chunk);
  return { chunkSize, finishFlush: whole ? constants.Z_FINISH : constants.Z_SYNC_FLUSH };
}

/**
 * Can span i be inflated straight into a reader's buffer by libz
 * (decodeSpanInto)? When it is whole members (a platter or BGZF file, a
 * multi-member gzip) and libz is present; else decodeSpan does it.
 */
export function decodesInto(index: AccessIndex, i: number): boolean {
  return index.point(i).kind === MEMBER && index.spanEndsAtMember(i) && !isDamagedTail(index, i) && libzPresent();
}

/** Span i (one decodesInto() accepts) inflated into `out`, exactly its length; its compressed bytes pass through memory from `pool`. */
export async function decodeSpanInto(source: BlockSource, index: AccessIndex, i: number, out: Buffer, pool: BufferPool): Promise<void> {
  const point = index.point(i);
  const length = index.spanCompressedEnd(i) - point.compressed;
  const input = pool.take(length);
  let result;
  try {
    result = await inflateGzipMembers(await source.read(point.compressed, length, input), out);
  } finally {
    pool.give(input);
  }
  if (result.ok) return;
  const where = spanWhere(source, index, i);
  if ("more" in result) throw new CorruptImageError(`${where}: the members inflate to more than the ${out.length} bytes their sizes say`);
  throw new CorruptImageError(`${where}: ${result.message ?? `inflates to ${result.produced} bytes, ${out.length} expected`}`);
}

function spanWhere(source: BlockSource, index: AccessIndex, i: number): string {
  const point = index.point(i);
  return `${source.name}: gzip data at offset ${point.compressed} (image offset ${point.decoded})`;
}

/** The last span of a file damaged mid-member may hit the damage after its last good byte. */
function isDamagedTail(index: AccessIndex, i: number): boolean {
  return i === index.count - 1 && index.damage !== undefined && !index.endsAtMemberEnd;
}

/** All of span i (LARGE_SPAN bytes at most, usually one zlib chunk returned as it is). */
export async function decodeSpan(source: BlockSource, index: AccessIndex, i: number): Promise<Buffer> {
  return inflateWhole(await openSpan(source, index, i, MAX_OUTPUT_CHUNK));
}

/** Run the span's input through its stream, drop the first `skip` bytes, return the next `length`. */
function inflateWhole({ stream, input, skip, length, rules }: SpanStream): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let seen = 0;
    let settled = false;
    const finish = (error?: CorruptImageError) => {
      if (settled) return;
      settled = true;
      stream.destroy();
      if (error) return reject(error);
      const all = chunks.length === 1 ? (chunks[0] as Buffer) : Buffer.concat(chunks);
      resolve(all.subarray(skip, skip + length));
    };
    const got = () => Math.min(Math.max(seen - skip, 0), length);
    stream.on("data", (chunk: Buffer) => {
      chunks.push(chunk);
      seen += chunk.length;
      if (seen - skip > length) {
        // More than the index promised: whole members lie about their size; a part of a member simply goes on.
        finish(rules.exact ? new CorruptImageError(`${rules.where}: the members inflate to more than the ${length} bytes their sizes say`) : undefined);
      }
    });
    stream.on("end", () => {
      if (got() < length) finish(new CorruptImageError(`${rules.where}: inflates to ${got()} bytes, ${length} expected`));
      else finish();
    });
    stream.on("error", (err: Error) => {
      if (rules.damagedTail && got() === length) finish();
      else finish(new CorruptImageError(`${rules.where}: ${err.message}`, { cause: err }));
    });
    stream.end(input);
  });
}

/**
 * A large span decoded a piece (PIECE bytes) at a time by one zlib stream
 * kept between reads, so reading through it sequentially inflates it once
 * and holds one piece, not the span. Pieces come in order only.
 */
export class SpanCursor {
  /** The piece the next take() returns. */
  next = 0;
  private readonly chunks: AsyncIterator<Buffer>;
  private pending: Buffer[] = [];
  private pendingBytes = 0;
  private skipLeft: number;
  private delivered = 0;
  private failure: unknown;

  private constructor(private readonly span: SpanStream) {
    this.skipLeft = span.skip;
    span.stream.end(span.input);
    this.chunks = span.stream[Symbol.asyncIterator]() as AsyncIterator<Buffer>;
  }

  static async open(source: BlockSource, index: AccessIndex, i: number): Promise<SpanCursor> {
    return new SpanCursor(await openSpan(source, index, i, PIECE));
  }

  /** The next piece: PIECE bytes, fewer for the last. */
  async take(): Promise<Buffer> {
    const { length, rules } = this.span;
    const want = Math.min(PIECE, length - this.delivered);
    while (this.pendingBytes < want) {
      const chunk = await this.pull();
      if (!chunk) throw new CorruptImageError(`${rules.where}: inflates to ${this.delivered + this.pendingBytes} bytes, ${length} expected`);
      const usable = chunk.subarray(Math.min(this.skipLeft, chunk.length));
      this.skipLeft -= chunk.length - usable.length;
      if (usable.length) {
        this.pending.push(usable);
        this.pendingBytes += usable.length;
      }
    }
    const all = this.pending.length === 1 ? (this.pending[0] as Buffer) : Buffer.concat(this.pending);
    const piece = all.subarray(0, want);
    const rest = all.subarray(want);
    this.pending = rest.length ? [rest] : [];
    this.pendingBytes = rest.length;
    this.delivered += want;
    this.next++;
    if (this.delivered === length && rules.exact) {
      // Whole members: the stream must end here, CRCs checked, nothing more.
      if (this.pendingBytes > 0 || (await this.pull())) throw new CorruptImageError(`${rules.where}: the members inflate to more than the ${length} bytes their sizes say`);
    }
    return piece;
  }

  close(): void {
    this.span.stream.destroy();
  }

  /** The next chunk of output, undefined at the end; zlib's errors as CorruptImageErrors. */
  private async pull(): Promise<Buffer | undefined> {
    if (this.failure) throw this.failure;
    try {
      const { done, value } = await this.chunks.next();
      return done ? undefined : value;
    } catch (err) {
      const { rules, length } = this.span;
      if (rules.damagedTail && this.delivered + this.pendingBytes >= length) return undefined;
      this.failure = new CorruptImageError(`${rules.where}: ${(err as Error).message}`, { cause: err });
      throw this.failure;
    }
  }
}
