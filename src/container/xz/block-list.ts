/**
 * Every block of an .xz file, found from its end as xz --list finds them:
 * stream padding, the stream footer, the index it points back to (one record
 * per block: sizes), the stream header before the blocks; then the stream
 * before it, for files of several streams. No block is read: opening a
 * file of any size reads a few KiB. Every size is checked against the file
 * and against what the format can hold before anything trusts it.
 */
import { CorruptImageError, UnsupportedError } from "../../errors.js";
import type { BlockSource } from "../../io/block-source.js";
import { FrameTable, MAX_FRAMES } from "../frame-table.js";
import { decodeIndexField, type IndexRecords } from "./index-field.js";
import { decodeStreamFooter, isStreamFooter, STREAM_FOOTER_SIZE } from "./stream-footer.js";
import { decodeStreamHeader, STREAM_HEADER_SIZE } from "./stream-header.js";

/**
 * The blocks of an .xz file: a FrameTable whose `detail` is each block's
 * Unpadded Size (header, compressed data and check, without padding: what the
 * index records) and whose `tag` is its stream's check type.
 */
export interface XzLayout {
  blocks: FrameTable;
  streams: number;
  /** Check types used, in stream order, each once. */
  checks: number[];
}

/**
 * The most an LZMA2 block of `unpaddedSize` bytes can decode to: every
 * LZMA2 chunk takes at least 10 bytes (control, sizes, the range coder's
 * start) for at most 2 MiB; 2^18 per byte is above that.
 */
export function mostDecodedBytes(unpaddedSize: number): number {
  return unpaddedSize * 2 ** 18;
}

/** Indexes larger than this are refused rather than held: 16 MiB lists millions of blocks. */
const MAX_INDEX = 16 << 20;
const PADDING_CHUNK = 64 << 10;

export async function readXzBlocks(below: BlockSource): Promise<XzLayout> {
  const name = below.name;
  const corrupt = (why: string) => new CorruptImageError(`${name}: corrupt xz file: ${why}`);
  // Streams are found last first; their blocks are numbered front to back once all are found.
  const streams: Array<{ blocksAt: number; records: IndexRecords; check: number }> = [];
  let recordCount = 0;
  let pos = below.size;
  if (pos % 4 !== 0) throw corrupt(`its size (${pos} bytes) is not a multiple of 4: it is truncated or has stray bytes at the end`);
  while (pos > 0) {
    pos = await skipPadding(below, pos);
    if (pos === 0) break;
    if (pos < STREAM_HEADER_SIZE + STREAM_FOOTER_SIZE) throw corrupt(`${pos} bytes at offset 0 are too few for a stream: the file is truncated or damaged`);
    const footerAt = pos - STREAM_FOOTER_SIZE;
    const footerBytes = await below.read(footerAt, STREAM_FOOTER_SIZE);
    if (!isStreamFooter(footerBytes)) throw corrupt(`no stream footer at offset ${footerAt}: the file is truncated or damaged`);
    const footer = decodeStreamFooter(footerBytes);
    if (typeof footer === "string") throw corrupt(`stream footer at offset ${footerAt}: ${footer}`);
    const indexAt = footerAt - footer.indexSize;
    if (indexAt < STREAM_HEADER_SIZE) throw corrupt(`the stream footer at offset ${footerAt} points to an index of ${footer.indexSize} bytes before the file's start`);
    if (footer.indexSize > MAX_INDEX) throw new UnsupportedError(`${name}: the xz index at offset ${indexAt} is ${footer.indexSize} bytes; platter reads indexes up to ${MAX_INDEX >> 20} MiB`);
    const records = decodeIndexField(await below.read(indexAt, footer.indexSize), MAX_FRAMES - recordCount);
    if (typeof records === "string") throw corrupt(`index at offset ${indexAt}: ${records}`);
    recordCount += records.unpaddedSizes.length;
    let blockBytes = 0;
    for (const [i, unpadded] of records.unpaddedSizes.entries()) {
      const uncompressed = records.uncompressedSizes[i] as number;
      if (uncompressed > mostDecodedBytes(unpadded)) {
        throw corrupt(`the index at offset ${indexAt} gives block ${i} ${uncompressed} bytes from ${unpadded}, more than xz can encode in them`);
      }
      blockBytes += padded(unpadded);
    }
    const streamAt = indexAt - blockBytes - STREAM_HEADER_SIZE;
    if (streamAt < 0) throw corrupt(`the index at offset ${indexAt} lists ${blockBytes} bytes of blocks, more than come before it`);
    const check = decodeStreamHeader(await below.read(streamAt, STREAM_HEADER_SIZE));
    if (typeof check === "string") throw corrupt(`stream header at offset ${streamAt}: ${check}`);
    if (check !== footer.check) throw corrupt(`the stream at offset ${streamAt} names check ${check} in its header and ${footer.check} in its footer`);
    streams.unshift({ blocksAt: streamAt + STREAM_HEADER_SIZE, records, check });
    pos = streamAt;
  }
  const blocks = new FrameTable(`${name}: xz blocks`);
  for (const { blocksAt, records, check } of streams) {
    let offset = blocksAt;
    for (const [i, unpadded] of records.unpaddedSizes.entries()) {
      blocks.add(offset, padded(unpadded), records.uncompressedSizes[i] as number, unpadded, check);
      offset += padded(unpadded);
    }
  }
  return { blocks, streams: streams.length, checks: [...new Set(streams.map((s) => s.check))] };
}

/** Blocks take a multiple of 4 bytes in the file. */
export function padded(size: number): number {
  return size + ((4 - (size % 4)) % 4);
}

/** Where the stream padding (zero bytes, in fours) that ends at `end` starts; most files have none, and cost a 4-byte read. */
async function skipPadding(below: BlockSource, end: number): Promise<number> {
  let pos = end;
  for (let n = 4; pos > 0; n = Math.min(n * 16, PADDING_CHUNK)) {
    const take = Math.min(n, pos);
    const chunk = await below.read(pos - take, take);
    let i = take;
    while (i >= 4 && chunk.readUInt32LE(i - 4) === 0) i -= 4;
    pos -= take - i;
    if (i > 0) break;
  }
  return pos;
}
