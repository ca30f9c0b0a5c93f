/**
 * Writing .gz images: independent members of 256 KiB of image each (a
 * "PM" subfield gives each member's size, member-sizes.ts), so a reader finds
 * any byte with one small read per member and decodes at most one member;
 * `gzip -d`, `pigz -d` and `zcat` read the file as any multi-member gzip.
 *
 * Why 256 KiB: with Node's zlib at level 6, members of 128 KiB to 4 MiB all
 * came within 0.5% of one `gzip -6` stream on a disk-like image (restarting
 * the 32 KiB window costs little once a member is well past it), and a random
 * 4 KiB read decodes a quarter of what a 1 MiB member costs.
 *
 * Each member is deflated by the system libz on the thread pool, CRC-32
 * included (libz.ts; Node's zlib where libz cannot load), straight into the
 * piece's buffer a few bytes in, so that the header that carries the sizes
 * takes the place of zlib's plain 10-byte one without moving the body.
 */
import { promisify } from "node:util";
import { gzip as gzipCallback, gunzip as gunzipCallback } from "node:zlib";
import { CorruptImageError, UsageError } from "../../errors.js";
import type { FileSource } from "../../io/file-source.js";
import type { ContainerSink, ContainerWriter, WriterOptions } from "../format.js";
import { PieceSink, resumePieces, type PieceEncoder, type ResumePoint } from "../piece-sink.js";
import { deflateGzipMember } from "./libz.js";
import { encodeGzipHeader } from "./member-header.js";
import { MAX_PLATTER_MEMBER, walkSizedMembers } from "./member-walk.js";
import { platterEndField, platterMemberField } from "./member-sizes.js";
import { encodeGzipTrailer } from "./member-trailer.js";

const gzipAsync = promisify(gzipCallback);
const gunzipAsync = promisify(gunzipCallback);

export const DEFAULT_MEMBER_SIZE = 256 << 10;
const MIN_MEMBER_SIZE = 64 << 10;
const MAX_MEMBER_SIZE = 16 << 20;
const DEFAULT_LEVEL = 6;
/** zlib's gzip output starts with the plain 10-byte header (no flags). */
const PLAIN_HEADER_BYTES = 10;
const XFL_AT = 8;
/** An empty final deflate block: BFINAL 1, fixed codes, end-of-block. */
const EMPTY_DEFLATE = Buffer.from([0x03, 0x00]);
/** CRC-32 and ISIZE. */
const TRAILER_BYTES = 8;

/** zlib's deflateBound() for its default window and memory level: stored blocks and a little more. */
function deflateBound(size: number): number {
  return size + (size >> 12) + (size >> 14) + (size >> 25) + 7;
}

function gzipEncoder(options: WriterOptions): PieceEncoder {
  const level = options.level ?? DEFAULT_LEVEL;
  if (!Number.isInteger(level) || level < 1 || level > 9) throw new UsageError(`gzip level must be 1 to 9, not ${String(level)}`);
  const memberSize = (options.memberSize as number | undefined) ?? DEFAULT_MEMBER_SIZE;
  if (!Number.isInteger(memberSize) || memberSize < MIN_MEMBER_SIZE || memberSize > Math.min(MAX_MEMBER_SIZE, MAX_PLATTER_MEMBER)) {
    throw new UsageError(`gzip member size must be ${MIN_MEMBER_SIZE} to ${MAX_MEMBER_SIZE} bytes, not ${String(memberSize)}`);
  }
  const headerBytes = encodeGzipHeader([platterMemberField(0, 0)]).length;
  return {
    format: "gzip",
    pieceSize: memberSize,
    maxEncodedSize: headerBytes + deflateBound(memberSize) + TRAILER_BYTES,
    indexed: false,
    // 256 KiB members deflate in a few ms with 300 KiB of zlib state: more in flight keep both cores of the
    // development VM busy (256 MiB: 2.83-3.05 s -> 2.59-2.78 s with one; two, once convert overlaps its
    // writes: 2.847 -> 2.785 s, median of 5 in turns, against pigz -6's 2.803 s; three: no better).
    extraInFlight: 2,
    header: () => Buffer.alloc(0),
    async encode(chunk, out) {
      // zlib's member is put where its body is in place; its plain header, just before, is then overwritten by ours.
      const plain = await gzipMemberInto(chunk, out.subarray(headerBytes - PLAIN_HEADER_BYTES), level);
      const bodyLength = plain.length - PLAIN_HEADER_BYTES;
      encodeGzipHeader([platterMemberField(headerBytes + bodyLength, chunk.length)], plain[XFL_AT]).copy(out);
      return { length: headerBytes + bodyLength };
    },
    trailer({ imageSize, complete }) {
      if (!complete) return undefined;
      const bodyBytes = EMPTY_DEFLATE.length + TRAILER_BYTES;
      const fields = (total: number) => [platterMemberField(total, 0), platterEndField(imageSize)];
      const header = encodeGzipHeader(fields(0));
      return Buffer.concat([encodeGzipHeader(fields(header.length + bodyBytes)), EMPTY_DEFLATE, encodeGzipTrailer({ crc32: 0, isize: 0 })]);
    },
  };
}

/** `chunk` as one plain gzip member at the start of `into`: deflated there by libz, else by Node's zlib and copied. */
async function gzipMemberInto(chunk: Buffer, into: Buffer, level: number): Promise<Buffer> {
  const length = await deflateGzipMember(chunk, into, level);
  if (length !== undefined) return into.subarray(0, length);
  const member = await gzipAsync(chunk, { level, chunkSize: into.length });
  if (member.length > into.length) throw new Error(`a gzip member of ${chunk.length} bytes deflated to more than its bound`);
  member.copy(into);
  return into.subarray(0, member.length);
}

export const gzipWriter: ContainerWriter = {
  name: "gzip",
  extensions: [".gz"],
  async create(path: string, options: WriterOptions): Promise<ContainerSink> {
    return PieceSink.create(path, gzipEncoder(options), options);
  },
  resume: resumeGzip,
};

/**
 * Cut a .gz platter was writing back to its last whole member (checked by
 * inflating it: CRC and size) and go on from there. Its end member, if it
 * has one, goes too: close() writes a new one.
 */
async function resumeGzip(path: string, options: WriterOptions): Promise<{ sink: ContainerSink; committed: number }> {
  return resumePieces(path, gzipEncoder(options), options, wholeMembers, "create");
}

async function wholeMembers(file: FileSource): Promise<ResumePoint> {
  if (file.size === 0) return { fileOffset: 0, committed: 0 };
  const walked = await walkSizedMembers(file);
  if (!walked || walked.layout !== "platter") {
    throw new UsageError(`${file.name}: not a .gz platter wrote (its members do not give their sizes), so it cannot be resumed`);
  }
  const { dataEnd } = walked;
  const committed = walked.index.size;
  // The last access point starts the last member (or a few small ones): inflating them checks their CRCs.
  const last = walked.index.last?.compressed ?? 0;
  if (committed > 0) {
    try {
      await gunzipAsync(await file.read(last, dataEnd - last));
    } catch {
      throw new CorruptImageError(`${file.name}: its last members (from offset ${last}) do not inflate; the file is damaged, not just cut short`);
    }
  }
  return { fileOffset: dataEnd, committed };
}
