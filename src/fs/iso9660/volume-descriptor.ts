/**
 * Volume descriptors (ECMA-119 8): one 2048-byte sector each, from sector 16
 * on, ended by a terminator. The primary (type 1) and supplementary (type 2)
 * descriptors share one layout; a Joliet supplementary descriptor names UCS-2
 * in its escape sequences and stores its text fields as UCS-2 big-endian.
 */
import { CorruptImageError } from "../../errors.js";
import { readAsciiField, readBoth16, readBoth32, writeAsciiField, writeBoth16, writeBoth32 } from "./both-endian.js";
import { SECTOR_SIZE, STANDARD_ID } from "./constants.js";
import { decodeVolumeDate, encodeVolumeDate } from "./dates.js";
import { decodeDirectoryRecord, encodeDirectoryRecord, type DirectoryRecord } from "./directory-record.js";
import { decodeUcs2, encodeUcs2 } from "./joliet.js";

export const VD_BOOT_RECORD = 0;
export const VD_PRIMARY = 1;
export const VD_SUPPLEMENTARY = 2;
export const VD_PARTITION = 3;
export const VD_TERMINATOR = 255;

/** Escape sequences of the three Joliet levels (UCS-2 level 1, 2, 3). */
export const JOLIET_ESCAPES = ["%/@", "%/C", "%/E"] as const;

export interface VolumeDescriptorHeader {
  type: number;
  version: number;
}

export interface PrimaryVolumeDescriptor {
  /** 1 primary, 2 supplementary (Joliet). */
  type: typeof VD_PRIMARY | typeof VD_SUPPLEMENTARY;
  /** Volume flags: byte 7, always 0 in a primary descriptor. */
  volumeFlags: number;
  systemId: string;
  volumeId: string;
  /** Size of the image in logical blocks. */
  volumeSpaceSize: number;
  /** 32 bytes; "%/E" for Joliet level 3, zeros for the primary descriptor. */
  escapeSequences: Buffer;
  volumeSetSize: number;
  volumeSequenceNumber: number;
  logicalBlockSize: number;
  pathTableSize: number;
  typeLPathTable: number;
  optionalTypeLPathTable: number;
  typeMPathTable: number;
  optionalTypeMPathTable: number;
  root: DirectoryRecord;
  volumeSetId: string;
  publisherId: string;
  dataPreparerId: string;
  applicationId: string;
  copyrightFileId: string;
  abstractFileId: string;
  bibliographicFileId: string;
  creation: number | null;
  modification: number | null;
  expiration: number | null;
  effective: number | null;
  fileStructureVersion: number;
  applicationUse: Buffer;
}

/** Byte offsets and widths of the text fields (8.4). */
const TEXT_FIELDS = [
  ["systemId", 8, 32],
  ["volumeId", 40, 32],
  ["volumeSetId", 190, 128],
  ["publisherId", 318, 128],
  ["dataPreparerId", 446, 128],
  ["applicationId", 574, 128],
  ["copyrightFileId", 702, 37],
  ["abstractFileId", 739, 37],
  ["bibliographicFileId", 776, 37],
] as const;

export type TextField = (typeof TEXT_FIELDS)[number][0];
export const TEXT_FIELD_NAMES: readonly TextField[] = TEXT_FIELDS.map(([name]) => name);

const ROOT_RECORD_OFFSET = 156;
const ROOT_RECORD_SIZE = 34;

/** True if the escape sequences announce Joliet (UCS-2). */
export function isJolietEscape(escapes: Buffer): boolean {
  const text = escapes.toString("latin1", 0, 3);
  return (JOLIET_ESCAPES as readonly string[]).includes(text);
}

export function decodeHeader(buf: Buffer): VolumeDescriptorHeader | null {
  if (buf.length < 7 || buf.toString("latin1", 1, 6) !== STANDARD_ID) return null;
  return { type: buf[0], version: buf[6] };
}

function writeHeader(buf: Buffer, type: number, version = 1): void {
  buf[0] = type;
  buf.write(STANDARD_ID, 1, "latin1");
  buf[6] = version;
}

/** A UCS-2 text field: characters padded with UCS-2 spaces; an odd trailing byte stays 0x00. */
function writeUcs2Field(buf: Buffer, offset: number, width: number, text: string): void {
  const chars = Math.floor(width / 2);
  buf.fill(0, offset, offset + width);
  for (let i = 0; i < chars; i++) buf.writeUInt16BE(0x20, offset + i * 2);
  encodeUcs2(text).subarray(0, chars * 2).copy(buf, offset);
}

function readUcs2Field(buf: Buffer, offset: number, width: number): string {
  return decodeUcs2(buf.subarray(offset, offset + width - (width % 2))).replace(/[\0 ]+$/, "");
}

export function encodePrimaryVolumeDescriptor(vd: PrimaryVolumeDescriptor): Buffer {
  const buf = Buffer.alloc(SECTOR_SIZE);
  writeHeader(buf, vd.type);
  buf[7] = vd.volumeFlags;
  const ucs2 = vd.type === VD_SUPPLEMENTARY && isJolietEscape(vd.escapeSequences);
  for (const [field, offset, width] of TEXT_FIELDS) {
    if (ucs2) writeUcs2Field(buf, offset, width, vd[field]);
    else writeAsciiField(buf, offset, width, vd[field]);
  }
  writeBoth32(buf, 80, vd.volumeSpaceSize);
  vd.escapeSequences.copy(buf, 88, 0, 32);
  writeBoth16(buf, 120, vd.volumeSetSize);
  writeBoth16(buf, 124, vd.volumeSequenceNumber);
  writeBoth16(buf, 128, vd.logicalBlockSize);
  writeBoth32(buf, 132, vd.pathTableSize);
  buf.writeUInt32LE(vd.typeLPathTable, 140);
  buf.writeUInt32LE(vd.optionalTypeLPathTable, 144);
  buf.writeUInt32BE(vd.typeMPathTable, 148);
  buf.writeUInt32BE(vd.optionalTypeMPathTable, 152);
  const root = encodeDirectoryRecord(vd.root);
  if (root.length !== ROOT_RECORD_SIZE) {
    throw new RangeError(`root directory record must be ${ROOT_RECORD_SIZE} bytes, not ${root.length}`);
  }
  root.copy(buf, ROOT_RECORD_OFFSET);
  encodeVolumeDate(vd.creation, buf, 813);
  encodeVolumeDate(vd.modification, buf, 830);
  encodeVolumeDate(vd.expiration, buf, 847);
  encodeVolumeDate(vd.effective, buf, 864);
  buf[881] = vd.fileStructureVersion;
  vd.applicationUse.copy(buf, 883, 0, 512);
  return buf;
}

export function decodePrimaryVolumeDescriptor(buf: Buffer, where = "volume descriptor"): PrimaryVolumeDescriptor {
  const header = decodeHeader(buf);
  if (!header || (header.type !== VD_PRIMARY && header.type !== VD_SUPPLEMENTARY) || buf.length < SECTOR_SIZE) {
    throw new CorruptImageError(`${where}: not a primary or supplementary volume descriptor`);
  }
  const escapeSequences = Buffer.from(buf.subarray(88, 120));
  const ucs2 = header.type === VD_SUPPLEMENTARY && isJolietEscape(escapeSequences);
  const text = (offset: number, width: number) =>
    ucs2 ? readUcs2Field(buf, offset, width) : readAsciiField(buf, offset, width);
  const logicalBlockSize = readBoth16(buf, 128);
  if (logicalBlockSize !== SECTOR_SIZE) {
    throw new CorruptImageError(`${where}: logical block size ${logicalBlockSize} (platter reads 2048-byte blocks only)`);
  }
  if (buf[ROOT_RECORD_OFFSET] !== ROOT_RECORD_SIZE) {
    throw new CorruptImageError(`${where}: root directory record length is ${buf[ROOT_RECORD_OFFSET]}, not 34`);
  }
  const texts = Object.fromEntries(TEXT_FIELDS.map(([field, offset, width]) => [field, text(offset, width)])) as Record<TextField, string>;
  const vd: PrimaryVolumeDescriptor = {
    type: header.type,
    volumeFlags: buf[7],
    ...texts,
    volumeSpaceSize: readBoth32(buf, 80),
    escapeSequences,
    volumeSetSize: readBoth16(buf, 120),
    volumeSequenceNumber: readBoth16(buf, 124),
    logicalBlockSize,
    pathTableSize: readBoth32(buf, 132),
    typeLPathTable: buf.readUInt32LE(140),
    optionalTypeLPathTable: buf.readUInt32LE(144),
    typeMPathTable: buf.readUInt32BE(148),
    optionalTypeMPathTable: buf.readUInt32BE(152),
    root: decodeDirectoryRecord(
      Buffer.from(buf.subarray(ROOT_RECORD_OFFSET, ROOT_RECORD_OFFSET + ROOT_RECORD_SIZE)),
      0,
      `${where}: root directory record`,
    ),
    creation: decodeVolumeDate(buf, 813),
    modification: decodeVolumeDate(buf, 830),
    expiration: decodeVolumeDate(buf, 847),
    effective: decodeVolumeDate(buf, 864),
    fileStructureVersion: buf[881],
    applicationUse: Buffer.from(buf.subarray(883, 883 + 512)),
  };
  return vd;
}

/** The volume descriptor set terminator (8.3). */
export function encodeTerminator(): Buffer {
  const buf = Buffer.alloc(SECTOR_SIZE);
  writeHeader(buf, VD_TERMINATOR);
  return buf;
}
