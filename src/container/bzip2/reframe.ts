/**
 * One block of a multi-block bzip2 stream as a stream of its own, so libbz2
 * can decode it alone (blocks are independent given the level): the stream
 * header, the block's bits from its magic on (realigned to a byte), the end
 * marker, and the combined CRC, which for a lone block is its own CRC.
 */
import { BitSink, readBits } from "./bits.js";
import { CRC_BITS, END_MAGIC, encodeStreamHeader, HEADER_BYTES, MAGIC_BITS } from "./stream-header.js";

/** `bytes` hold the block at bits [from, to) (from: its magic); `level` is its stream's. */
export function reframeBlock(bytes: Buffer, from: number, to: number, level: number): Buffer {
  const crc = readBits(bytes, from + MAGIC_BITS, CRC_BITS);
  const sink = new BitSink(HEADER_BYTES + Math.ceil((to - from + MAGIC_BITS + CRC_BITS) / 8) + 1);
  sink.bytes(encodeStreamHeader(level));
  sink.range(bytes, from, to);
  sink.value(Number(END_MAGIC / 2n ** 24n), 24);
  sink.value(Number(END_MAGIC % 2n ** 24n), 24);
  sink.value(crc, CRC_BITS);
  return sink.finish();
}
