/**
 * The VHDX header, stored twice (at 64 KiB and 128 KiB) so one can be
 * rewritten while the other stands: the valid one with the higher sequence
 * number is current. 4 KiB checksummed with CRC-32C (the checksum field
 * counted as zero); it says where the log is and whether it must be
 * replayed (a non-zero log GUID).
 */
import { crc32c } from "../../util/crc32.js";
import { decodeGuid, encodeGuid, ZERO_GUID } from "../../partition/guid.js";

export const HEADER_BYTES = 4096;
export const HEADER_OFFSETS = [64 * 1024, 128 * 1024] as const;
const SIGNATURE = "head";

export interface VhdxHeader {
  sequenceNumber: bigint;
  fileWriteGuid: string;
  dataWriteGuid: string;
  /** ZERO_GUID when the log is empty. */
  logGuid: string;
  logVersion: number;
  version: number;
  logLength: number;
  logOffset: number;
}

/** Why `buf` is not a valid header, or undefined. */
export function headerProblem(buf: Buffer): string | undefined {
  if (buf.toString("latin1", 0, 4) !== SIGNATURE) return "no 'head' signature";
  const stored = buf.readUInt32LE(4);
  const computed = checksumWithoutField(buf.subarray(0, HEADER_BYTES), 4);
  if (stored !== computed) return `CRC-32C 0x${stored.toString(16).padStart(8, "0")} should be 0x${computed.toString(16).padStart(8, "0")}`;
  if (buf.readUInt16LE(66) !== 1) return `version ${buf.readUInt16LE(66)} (VHDX is version 1)`;
  return undefined;
}

export function decodeVhdxHeader(buf: Buffer): VhdxHeader {
  return {
    sequenceNumber: buf.readBigUInt64LE(8),
    fileWriteGuid: decodeGuid(buf, 16),
    dataWriteGuid: decodeGuid(buf, 32),
    logGuid: decodeGuid(buf, 48),
    logVersion: buf.readUInt16LE(64),
    version: buf.readUInt16LE(66),
    logLength: buf.readUInt32LE(68),
    // A log past 2^53 bytes cannot be in any file; the bounds checks catch it.
    logOffset: Number(buf.readBigUInt64LE(72)),
  };
}

export function encodeVhdxHeader(header: VhdxHeader): Buffer {
  const buf = Buffer.alloc(HEADER_BYTES);
  buf.write(SIGNATURE, 0, "latin1");
  buf.writeBigUInt64LE(header.sequenceNumber, 8);
  encodeGuid(header.fileWriteGuid, buf, 16);
  encodeGuid(header.dataWriteGuid, buf, 32);
  encodeGuid(header.logGuid, buf, 48);
  buf.writeUInt16LE(header.logVersion, 64);
  buf.writeUInt16LE(header.version, 66);
  buf.writeUInt32LE(header.logLength, 68);
  buf.writeBigUInt64LE(BigInt(header.logOffset), 72);
  buf.writeUInt32LE(crc32c(buf), 4);
  return buf;
}

export function hasLog(header: VhdxHeader): boolean {
  return header.logGuid !== ZERO_GUID;
}

/** CRC-32C of `buf` with the four bytes at `at` taken as zero (every VHDX checksum is computed so). */
export function checksumWithoutField(buf: Buffer, at: number): number {
  const crc = crc32c(buf.subarray(0, at));
  return crc32c(buf.subarray(at + 4), crc32c(Buffer.alloc(4), crc));
}
