/**
 * The VHD footer ("hard disk footer", Microsoft's Virtual Hard Disk Image
 * Format Specification): 512 big-endian bytes at the end of every VHD, and
 * copied at offset 0 of dynamic and differencing ones. Its checksum is the
 * one's complement of the byte sum, the checksum field left out.
 */
import { CorruptImageError } from "../../errors.js";
import { readUint64BE } from "../../util/uint64.js";

export const FOOTER_BYTES = 512;
const COOKIE = "conectix";
/** "Reserved, must be set to 1" in the features field. */
const FEATURES_RESERVED = 2;
const FORMAT_VERSION = 0x00010000;
/** The data offset of a fixed disk: no next structure. */
const NO_DATA_OFFSET = 0xffffffffffffffffn;
/** Footer timestamps count seconds from 2000-01-01 00:00:00 UTC. */
export const VHD_EPOCH = 946684800;

export type VhdDiskType = "fixed" | "dynamic" | "differencing";
const DISK_TYPES: Record<number, VhdDiskType> = { 2: "fixed", 3: "dynamic", 4: "differencing" };
const DISK_TYPE_CODES: Record<VhdDiskType, number> = { fixed: 2, dynamic: 3, differencing: 4 };

export interface ChsGeometry {
  cylinders: number;
  heads: number;
  sectorsPerTrack: number;
}

export interface VhdFooter {
  features: number;
  /** Where the dynamic header is; null for a fixed disk. */
  dataOffset: number | null;
  /** Unix seconds. */
  timestamp: number;
  /** Four characters: "qemu", "qem2", "win ", "vpc "... */
  creatorApp: string;
  creatorVersion: number;
  creatorHostOs: string;
  originalSize: number;
  currentSize: number;
  geometry: ChsGeometry;
  diskType: VhdDiskType;
  uniqueId: Buffer;
  savedState: boolean;
}

/** One's complement of the sum of `buf`'s bytes, the four at `checksumAt` counted as zero. */
export function vhdChecksum(buf: Buffer, checksumAt: number): number {
  let sum = 0;
  for (let i = 0; i < buf.length; i++) if (i < checksumAt || i >= checksumAt + 4) sum += buf[i];
  return ~sum >>> 0;
}

/** Why `buf` is not a valid footer, or undefined if it is. */
export function footerProblem(buf: Buffer): string | undefined {
  if (buf.length < FOOTER_BYTES || buf.toString("latin1", 0, 8) !== COOKIE) return "no 'conectix' cookie";
  const stored = buf.readUInt32BE(64);
  const computed = vhdChecksum(buf.subarray(0, FOOTER_BYTES), 64);
  if (stored !== computed) return `checksum 0x${stored.toString(16).padStart(8, "0")} should be 0x${computed.toString(16).padStart(8, "0")}`;
  if (!(buf.readUInt32BE(60) in DISK_TYPES)) return `unknown disk type ${buf.readUInt32BE(60)}`;
  return undefined;
}

export function hasVhdCookie(buf: Buffer): boolean {
  return buf.length >= 8 && buf.toString("latin1", 0, 8) === COOKIE;
}

/** Decode a footer that footerProblem() passed; `where` names it in errors ("disk.vhd: VHD footer at byte 67125248"). */
export function decodeVhdFooter(buf: Buffer, where: string): VhdFooter {
  const problem = footerProblem(buf);
  if (problem) throw new CorruptImageError(`${where}: ${problem}`);
  const dataOffset = buf.readBigUInt64BE(16);
  return {
    features: buf.readUInt32BE(8),
    dataOffset: dataOffset === NO_DATA_OFFSET ? null : readUint64BE(buf, 16, `${where}: data offset`),
    timestamp: buf.readUInt32BE(24) + VHD_EPOCH,
    creatorApp: buf.toString("latin1", 28, 32),
    creatorVersion: buf.readUInt32BE(32),
    creatorHostOs: buf.toString("latin1", 36, 40),
    originalSize: readUint64BE(buf, 40, `${where}: original size`),
    currentSize: readUint64BE(buf, 48, `${where}: current size`),
    geometry: { cylinders: buf.readUInt16BE(56), heads: buf[58], sectorsPerTrack: buf[59] },
    diskType: DISK_TYPES[buf.readUInt32BE(60)],
    uniqueId: Buffer.from(buf.subarray(68, 84)),
    savedState: buf[84] !== 0,
  };
}

export function encodeVhdFooter(footer: VhdFooter): Buffer {
  const buf = Buffer.alloc(FOOTER_BYTES);
  buf.write(COOKIE, 0, "latin1");
  buf.writeUInt32BE(footer.features | FEATURES_RESERVED, 8);
  buf.writeUInt32BE(FORMAT_VERSION, 12);
  buf.writeBigUInt64BE(footer.dataOffset === null ? NO_DATA_OFFSET : BigInt(footer.dataOffset), 16);
  buf.writeUInt32BE(Math.max(0, footer.timestamp - VHD_EPOCH) >>> 0, 24);
  buf.write(footer.creatorApp.padEnd(4, " ").slice(0, 4), 28, "latin1");
  buf.writeUInt32BE(footer.creatorVersion, 32);
  buf.write(footer.creatorHostOs.padEnd(4, " ").slice(0, 4), 36, "latin1");
  buf.writeBigUInt64BE(BigInt(footer.originalSize), 40);
  buf.writeBigUInt64BE(BigInt(footer.currentSize), 48);
  buf.writeUInt16BE(footer.geometry.cylinders, 56);
  buf[58] = footer.geometry.heads;
  buf[59] = footer.geometry.sectorsPerTrack;
  buf.writeUInt32BE(DISK_TYPE_CODES[footer.diskType], 60);
  footer.uniqueId.copy(buf, 68, 0, 16);
  buf[84] = footer.savedState ? 1 : 0;
  buf.writeUInt32BE(vhdChecksum(buf, 64), 64);
  return buf;
}

/** A VHD unique id as 8-4-4-4-12 hex, in stored byte order. */
export function formatUniqueId(id: Buffer): string {
  const hex = id.toString("hex");
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20, 32)}`;
}
