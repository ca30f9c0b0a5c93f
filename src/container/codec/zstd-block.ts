import { decompress } from "fzstd";
import { CorruptImageError } from "../../errors.js";
import { corruptBlock, tooLarge } from "./corrupt.js";

const ZSTD_MAGIC = 0xfd2fb528;

/**
 * The content size a zstd frame header declares, or undefined when it does
 * not say. Checked before decoding because the decoder allocates that much.
 */
export function frameContentSize(frame: Buffer): number | undefined {
  if (frame.length < 6 || frame.readUInt32LE(0) !== ZSTD_MAGIC) {
    throw new CorruptImageError("corrupt zstd block: no zstd frame magic");
  }
  const descriptor = frame[4] as number;
  const singleSegment = (descriptor >> 5) & 1;
  const sizeFlag = descriptor >> 6;
  const dictIdBytes = [0, 1, 2, 4][descriptor & 3] as number;
  const sizeBytes = sizeFlag === 0 ? singleSegment : 1 << sizeFlag;
  if (sizeBytes === 0) return undefined;
  const at = 5 + (singleSegment ? 0 : 1) + dictIdBytes;
  if (frame.length < at + sizeBytes) throw new CorruptImageError("corrupt zstd block: truncated frame header");
  switch (sizeBytes) {
    case 1:
      return frame[at] as number;
    case 2:
      return frame.readUInt16LE(at) + 256;
    case 4:
      return frame.readUInt32LE(at);
    default:
      return Number(frame.readBigUInt64LE(at));
  }
}

/**
 * One zstd frame, whole (squashfs writes one per block, with its content
 * size). fzstd is a pure-JS decoder: about 115 MB/s, enough for reading
 * images, and no native build (zstd-napi needs a 55 s compile).
 */
export async function decompressBlock(input: Buffer, maxSize: number): Promise<Buffer> {
  const declared = frameContentSize(input);
  if (declared !== undefined && declared > maxSize) throw tooLarge("zstd", maxSize);
  let out: Uint8Array;
  try {
    out = decompress(input);
  } catch (err) {
    throw corruptBlock("zstd", err);
  }
  if (out.length > maxSize) throw tooLarge("zstd", maxSize);
  return Buffer.from(out.buffer, out.byteOffset, out.length);
}
