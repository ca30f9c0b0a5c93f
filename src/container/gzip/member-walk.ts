/**
 * Index a gzip file whose members say their own size (platter's "PM", BGZF's
 * "BC", member-sizes.ts) by hopping from header to header: one small read
 * per member (the trailer of one and the header of the next), nothing
 * inflated. Every size is checked before it is believed: a member must fit
 * in the file, its trailer must agree with its header, and it cannot claim
 * more than deflate can expand to.
 *
 * Small members are read whole in the same hop and checked for zeros (the
 * runs disk images are full of): platter writes every zero chunk the same
 * way, so one inflate per distinct encoding marks them all, and reads of
 * them then cost nothing.
 */
import { promisify } from "node:util";
import { gunzip } from "node:zlib";
import { CorruptImageError } from "../../errors.js";
import type { BlockSource } from "../../io/block-source.js";
import { isAllZero } from "../../io/zeros.js";
import { AccessIndex, MEMBER } from "./access-index.js";
import { decodeGzipHeader, type GzipHeader } from "./member-header.js";
import { memberSizes, type MemberSizes } from "./member-sizes.js";
import { decodeGzipTrailer, TRAILER_BYTES } from "./member-trailer.js";
import { warnTrailingBytes } from "./trailing-bytes.js";

const gunzipAsync = promisify(gunzip);

/** Decoded bytes a span aims for: random reads decode about this much. */
export const MEMBER_SPAN = 256 << 10;
/** Largest member platter accepts from a PM field (its writer makes 256 KiB ones). */
export const MAX_PLATTER_MEMBER = 64 << 20;
/** BGZF's own limit (SAM/BAM spec §4.1). */
const MAX_BGZF_MEMBER = 1 << 16;
/** Deflate's densest code: a 258-byte match in 2 bits. */
const MAX_DEFLATE_RATIO = 1032;
const MIN_DEFLATE_BYTES = 2;
/** Bytes read with each hop: the next header (longer ones are read again whole), or all of a small member. */
const HOP_READ = 2048;
/** Members that decode to more than this are not checked for zeros. */
const MAX_ZERO_PROBE = 4 << 20;
const MAX_HEADER = 1 << 16;

export interface WalkResult {
  index: AccessIndex;
  layout: MemberSizes["kind"];
  /** Where the last member that holds data ends (before platter's end member): where appending goes on. */
  dataEnd: number;
}

/** The index, or undefined when the first member does not give its size (a plain gzip stream: index-pass.ts). */
export async function walkSizedMembers(source: BlockSource, onWarning?: (message: string) => void): Promise<WalkResult | undefined> {
  let peek = await source.read(0, Math.min(HOP_READ, source.size));
  const first = await readHeader(source, 0, peek);
  const firstSizes = first && memberSizes(first);
  if (!firstSizes) return undefined;
  const index = new AccessIndex(MEMBER_SPAN);
  const damaged = (at: number, message: string) => {
    index.damage = { compressedOffset: at, message };
  };
  let at = 0;
  let decoded = 0;
  let lastPoint = -Infinity;
  let dataEnd = 0;
  const zeroMembers = new ZeroMembers();
  while (at < source.size) {
    let header: GzipHeader | undefined;
    try {
      header = await readHeader(source, at, peek);
    } catch (err) {
      if (!(err instanceof CorruptImageError) || at === 0) throw err;
      await warnTrailingBytes(source, at, onWarning);
      break;
    }
    if (!header) {
      damaged(at, `truncated: the gzip header at offset ${at} ends at the end of the file`);
      break;
    }
    const sizes = memberSizes(header);
    // A member without sizes among sized ones (files appended to each other): the full pass indexes it.
    if (!sizes) return undefined;
    const problem = checkSizes(sizes, header, at, source.size);
    if (problem) {
      damaged(at, problem);
      break;
    }
    const end = at + sizes.memberSize;
    const whole = sizes.memberSize <= peek.length ? peek.subarray(0, sizes.memberSize) : undefined;
    // This member's trailer and the next member's header (or all of it), in one read.
    peek = await source.read(end - TRAILER_BYTES, Math.min(TRAILER_BYTES + HOP_READ, source.size - end + TRAILER_BYTES));
    const trailer = decodeGzipTrailer(peek);
    peek = peek.subarray(TRAILER_BYTES);
    const decodedSize = sizes.decodedSize ?? trailer.isize;
    if (sizes.decodedSize !== undefined && trailer.isize !== sizes.decodedSize) {
      damaged(at, `the gzip member at offset ${at} says it holds ${sizes.decodedSize} bytes, its trailer says ${trailer.isize}`);
      break;
    }
    const limit = sizes.kind === "bgzf" ? MAX_BGZF_MEMBER : MAX_PLATTER_MEMBER;
    const deflateBytes = sizes.memberSize - header.length - TRAILER_BYTES;
    if (decodedSize > limit || decodedSize > deflateBytes * MAX_DEFLATE_RATIO) {
      damaged(at, `the gzip member at offset ${at} claims ${decodedSize} bytes from ${deflateBytes} compressed ones, more than ${sizes.kind === "bgzf" ? "BGZF allows" : "deflate or platter allow"}`);
      break;
    }
    if (index.count === 0 || (decodedSize > 0 && decoded - lastPoint >= index.span)) {
      index.add({ kind: MEMBER, decoded, compressed: at, bits: 0, zeros: true });
      lastPoint = decoded;
    }
    if (decodedSize > 0 && !(whole && (await zeroMembers.holdsZeros(whole, decodedSize)))) index.sawData();
    index.members++;
    decoded += decodedSize;
    if (sizes.imageSize === undefined) dataEnd = end;
    at = end;
    index.size = decoded;
    index.compressedEnd = end;
    if (sizes.imageSize !== undefined) {
      if (sizes.imageSize !== decoded) {
        damaged(at, `platter's end member says the image holds ${sizes.imageSize} bytes, its members hold ${decoded}`);
        break;
      }
      index.complete = true;
      if (at < source.size) onWarning?.(`${source.name}: ${source.size - at} bytes after platter's end member (offset ${at}) ignored`);
      break;
    }
  }
  if (firstSizes.kind === "platter" && !index.complete && !index.damage) {
    onWarning?.(`${source.name}: no end member: the file was cut short or its capture interrupted; it holds the first ${index.size} bytes of the image`);
  }
  return { index, layout: firstSizes.kind, dataEnd };
}

/** Member encodings seen to decode to zeros only, by size. */
class ZeroMembers {
  private readonly known = new Map<number, Buffer>();

  async holdsZeros(member: Buffer, decodedSize: number): Promise<boolean> {
    const known = this.known.get(member.length);
    if (known) return known.equals(member);
    if (decodedSize > MAX_ZERO_PROBE) return false;
    let out: Buffer;
    try {
      out = await gunzipAsync(member, { maxOutputLength: decodedSize + 1 });
    } catch {
      return false; // a bad member: its reader will say so
    }
    if (out.length !== decodedSize || !isAllZero(out)) return false;
    this.known.set(member.length, Buffer.from(member));
    return true;
  }
}

function checkSizes(sizes: MemberSizes, header: GzipHeader, at: number, fileSize: number): string | undefined {
  if (sizes.memberSize < header.length + MIN_DEFLATE_BYTES + TRAILER_BYTES) {
    return `the gzip member at offset ${at} says it takes ${sizes.memberSize} bytes, less than its own header and trailer`;
  }
  if (at + sizes.memberSize > fileSize) {
    return `truncated: the gzip member at offset ${at} takes ${sizes.memberSize} bytes, past the end of the file (${fileSize} bytes)`;
  }
  return undefined;
}

/** The header at `at` (from `peek`, what the last hop read there, or read anew); undefined if the file ends inside it. */
async function readHeader(source: BlockSource, at: number, peek: Buffer): Promise<GzipHeader | undefined> {
  const where = `${source.name}: gzip member at offset ${at}`;
  let header = decodeGzipHeader(peek, where);
  for (let want = 512; !header; want *= 2) {
    if (want > MAX_HEADER) throw new CorruptImageError(`${where}: a header longer than ${MAX_HEADER} bytes`);
    const length = Math.min(want, source.size - at);
    header = decodeGzipHeader(await source.read(at, length), where);
    if (!header && length < want) return undefined;
  }
  return header;
}
