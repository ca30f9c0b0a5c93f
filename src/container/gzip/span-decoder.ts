/**
 * Decode one span of an AccessIndex with Node's zlib (its inflate runs on
 * libuv's thread pool, so spans decode on every core at once).
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
import { type AccessIndex, MEMBER } from "./access-index.js";
import { deflatePreface } from "./deflate-preface.js";

/**
 * zlib hands output on in chunks of this many bytes at most: one chunk for a
 * whole span costs half the CPU of 64 KiB ones (fewer thread-pool trips).
 */
const MAX_OUTPUT_CHUNK = 4 << 20;

export async function decodeSpan(source: BlockSource, index: AccessIndex, i: number): Promise<Buffer> {
  const point = index.point(i);
  const length = index.spanEnd(i) - point.decoded;
  const end = index.spanCompressedEnd(i);
  const where = `${source.name}: gzip data at offset ${point.compressed} (image offset ${point.decoded})`;
  // The last span of a file damaged mid-member may hit the damage after its last good byte.
  const damagedTail = i === index.count - 1 && index.damage !== undefined && !index.endsAtMemberEnd;
  if (point.kind === MEMBER) {
    const input = await source.read(point.compressed, end - point.compressed);
    const whole = index.spanEndsAtMember(i);
    return inflate(createGunzip(options(whole, length)), input, 0, length, { exact: whole, damagedTail, where });
  }
  const from = point.bits ? point.compressed - 1 : point.compressed;
  const raw = await source.read(from, end - from);
  const window = point.window ?? Buffer.alloc(0);
  const preface = deflatePreface(window, point.bits, point.bits ? (raw[0] as number) : 0);
  const input = Buffer.concat([preface, point.bits ? raw.subarray(1) : raw]);
  return inflate(createInflateRaw(options(false, window.length + length)), input, window.length, length, { exact: false, damagedTail, where });
}

function options(whole: boolean, output: number) {
  // One byte over, so output past the expected length shows in the first chunk.
  const chunkSize = Math.min(Math.max(output + 1, constants.Z_MIN_CHUNK), MAX_OUTPUT_CHUNK);
  return { chunkSize, finishFlush: whole ? constants.Z_FINISH : constants.Z_SYNC_FLUSH };
}

interface InflateRules {
  /** The input is whole members: it must decode to exactly `length` bytes. */
  exact: boolean;
  /** An error after `length` good bytes is the known damage, not a new one. */
  damagedTail: boolean;
  where: string;
}

/**
 * Run `input` through `stream`, drop the first `skip` bytes, return the next
 * `length`. zlib's chunk size is set to hold them all, so the usual case is
 * one chunk, returned as it is (no copy, no second buffer).
 */
function inflate(stream: Gunzip | InflateRaw, input: Buffer, skip: number, length: number, rules: InflateRules): Promise<Buffer> {
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
