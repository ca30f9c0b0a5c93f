/**
 * What platter writes at the end of a .bz2 so a reader knows the decoded
 * sizes without decoding (bzip2 itself records none): every stream before it
 * holds exactly `chunkSize` image bytes but the last, and the image holds
 * `imageSize`. bzip2 has no place for such numbers, so they ride on empty
 * streams (header, end marker, CRC 0: what `bzip2` writes for empty input,
 * 14 bytes each), whose level digits '1'..'9' carry one base-9 digit each:
 * a signature, then the chunk size (11 digits), then the image size (18
 * digits). Every bzip2 decoder reads it as nothing (checked: bzip2, pbzip2,
 * 7zz, bsdcat, Python's bz2); 35 streams, 490 bytes.
 */
import { decodeEmptyStream, EMPTY_STREAM_BYTES, encodeEmptyStream } from "./stream-header.js";

const SIGNATURE = [8, 0, 8, 1, 2, 7];
const CHUNK_DIGITS = 11;
const SIZE_DIGITS = 18;
const DIGITS = SIGNATURE.length + CHUNK_DIGITS + SIZE_DIGITS;
export const TRAILER_BYTES = DIGITS * EMPTY_STREAM_BYTES;

export interface PlatterTrailer {
  chunkSize: number;
  imageSize: number;
}

function digitsOf(value: number, count: number): number[] {
  const digits: number[] = [];
  for (let i = 0; i < count; i++, value = Math.floor(value / 9)) digits.unshift(value % 9);
  if (value !== 0) throw new RangeError(`${value} does not fit ${count} base-9 digits`);
  return digits;
}

export function encodePlatterTrailer(trailer: PlatterTrailer): Buffer {
  const digits = [...SIGNATURE, ...digitsOf(trailer.chunkSize, CHUNK_DIGITS), ...digitsOf(trailer.imageSize, SIZE_DIGITS)];
  return Buffer.concat(digits.map((d) => encodeEmptyStream(d + 1)));
}

/** The trailer `tail` (the file's last TRAILER_BYTES bytes) holds, or undefined if it is not one. */
export function decodePlatterTrailer(tail: Buffer): PlatterTrailer | undefined {
  if (tail.length !== TRAILER_BYTES) return undefined;
  const digits: number[] = [];
  for (let i = 0; i < DIGITS; i++) {
    const level = decodeEmptyStream(tail, i * EMPTY_STREAM_BYTES);
    if (level === undefined) return undefined;
    digits.push(level - 1);
  }
  if (SIGNATURE.some((d, i) => digits[i] !== d)) return undefined;
  const number = (from: number, count: number) => digits.slice(from, from + count).reduce((n, d) => n * 9 + d, 0);
  const chunkSize = number(SIGNATURE.length, CHUNK_DIGITS);
  const imageSize = number(SIGNATURE.length + CHUNK_DIGITS, SIZE_DIGITS);
  if (chunkSize === 0 || !Number.isSafeInteger(imageSize)) return undefined;
  return { chunkSize, imageSize };
}
