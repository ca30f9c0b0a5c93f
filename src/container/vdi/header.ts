/**
 * The VirtualBox VDI header (version 1.1, little-endian): a text banner,
 * the signature 0xbeda107f, where the block map and the data start, the
 * disk size, the block size, and the image, parent and snapshot UUIDs.
 */
import { CorruptImageError } from "../../errors.js";
import { decodeGuid } from "../../partition/guid.js";
import { readUint64 } from "../../util/uint64.js";

export const VDI_SIGNATURE = 0xbeda107f;
const SIGNATURE_AT = 0x40;
/** Version 1.1, what every VirtualBox since 1.x writes (and the only one qemu reads). */
const VERSION_1_1 = 0x00010001;
export const VDI_HEADER_BYTES = 0x200;

export type VdiImageType = "dynamic" | "static" | "undo" | "differencing";
const IMAGE_TYPES: Record<number, VdiImageType> = { 1: "dynamic", 2: "static", 3: "undo", 4: "differencing" };

export interface VdiHeader {
  banner: string;
  version: number;
  imageType: VdiImageType;
  imageFlags: number;
  description: string;
  blockMapOffset: number;
  dataOffset: number;
  /** The legacy geometry's sector size. */
  sectorSize: number;
  diskSize: number;
  blockSize: number;
  /** Bytes of private data before each block's data (always 0 in practice). */
  blockExtra: number;
  blocksInImage: number;
  blocksAllocated: number;
  uuidImage: string;
  uuidLastSnap: string;
  uuidLink: string;
  uuidParent: string;
}

export function hasVdiSignature(head: Buffer): boolean {
  return head.length >= SIGNATURE_AT + 4 && head.readUInt32LE(SIGNATURE_AT) === VDI_SIGNATURE;
}

export function decodeVdiHeader(buf: Buffer, where: string): VdiHeader {
  if (buf.length < VDI_HEADER_BYTES || !hasVdiSignature(buf)) throw new CorruptImageError(`${where}: no VDI signature 0xbeda107f at byte 64`);
  const version = buf.readUInt32LE(0x44);
  if (version !== VERSION_1_1) throw new CorruptImageError(`${where}: VDI version ${version >>> 16}.${version & 0xffff} (platter reads 1.1)`);
  const typeCode = buf.readUInt32LE(0x4c);
  const imageType = IMAGE_TYPES[typeCode];
  if (!imageType) throw new CorruptImageError(`${where}: unknown VDI image type ${typeCode} at byte 76`);
  return {
    banner: buf.toString("latin1", 0, SIGNATURE_AT).replace(/\0.*$/s, "").trim(),
    version,
    imageType,
    imageFlags: buf.readUInt32LE(0x50),
    description: buf.toString("utf8", 0x54, 0x154).replace(/\0.*$/s, ""),
    blockMapOffset: buf.readUInt32LE(0x154),
    dataOffset: buf.readUInt32LE(0x158),
    sectorSize: buf.readUInt32LE(0x168),
    diskSize: readUint64(buf, 0x170, `${where}: VDI disk size`),
    blockSize: buf.readUInt32LE(0x178),
    blockExtra: buf.readUInt32LE(0x17c),
    blocksInImage: buf.readUInt32LE(0x180),
    blocksAllocated: buf.readUInt32LE(0x184),
    // VirtualBox's RTUUID: the first three fields little-endian, as GPT stores its GUIDs.
    uuidImage: decodeGuid(buf, 0x188),
    uuidLastSnap: decodeGuid(buf, 0x198),
    uuidLink: decodeGuid(buf, 0x1a8),
    uuidParent: decodeGuid(buf, 0x1b8),
  };
}

