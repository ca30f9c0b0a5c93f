/**
 * The GUID Partition Table (UEFI spec, chapter 5): a 92-byte header at LBA 1
 * (and its backup at the last LBA) and an array of 128-byte entries, each
 * protected by a CRC32. Pure codecs: no I/O. LBAs are JS numbers: a value
 * past 2^53 cannot be a real disk and is a CorruptImageError naming the field.
 */
import { crc32 } from "../util/crc32.js";
import { CorruptImageError, UsageError } from "../errors.js";
import { readUint64 } from "../util/uint64.js";
import { decodeGuid, encodeGuid, ZERO_GUID } from "./guid.js";

export const GPT_SIGNATURE = "EFI PART";
export const GPT_HEADER_SIZE = 92;
export const GPT_REVISION_1_0 = 0x00010000;
export const GPT_ENTRY_SIZE = 128;
export const GPT_DEFAULT_ENTRY_COUNT = 128;
const NAME_OFFSET = 56;
const NAME_BYTES = 72;

export interface GptHeader {
  revision: number;
  headerSize: number;
  /** The CRC32 stored in the header. */
  headerCrc32: number;
  /** The LBA this header says it lives at (1 for the primary). */
  currentLba: number;
  /** The LBA of the other copy. */
  backupLba: number;
  firstUsableLba: number;
  lastUsableLba: number;
  diskGuid: string;
  entriesLba: number;
  entryCount: number;
  entrySize: number;
  entriesCrc32: number;
  /** The stored header CRC matches the header bytes. */
  crcValid: boolean;
}

export interface GptEntry {
  typeGuid: string;
  uniqueGuid: string;
  firstLba: number;
  /** Inclusive. */
  lastLba: number;
  /** 64 attribute bits: 0 required, 1 no block-IO protocol, 2 legacy BIOS bootable, 48-63 type-specific. */
  attributes: bigint;
  name: string;
}


/** Is `buf` (a sector) a GPT header at all? Cheap check before decoding. */
export function hasGptSignature(buf: Buffer): boolean {
  return buf.length >= 8 && buf.toString("latin1", 0, 8) === GPT_SIGNATURE;
}

/**
 * Decode the header from its sector. A wrong signature or an impossible
 * header size is an error naming the field; a CRC mismatch is reported in
 * `crcValid` so the reader can fall back to the backup and say why.
 */
export function decodeGptHeader(sector: Buffer): GptHeader {
  if (sector.length < GPT_HEADER_SIZE) {
    throw new CorruptImageError(`GPT header: need ${GPT_HEADER_SIZE} bytes, got ${sector.length}`);
  }
  if (!hasGptSignature(sector)) {
    throw new CorruptImageError(`GPT header: bad signature ${JSON.stringify(sector.toString("latin1", 0, 8))} (expected "EFI PART")`);
  }
  const headerSize = sector.readUInt32LE(12);
  if (headerSize < GPT_HEADER_SIZE || headerSize > sector.length) {
    throw new CorruptImageError(`GPT header: header size ${headerSize} is out of range (${GPT_HEADER_SIZE}..${sector.length})`);
  }
  const headerCrc32 = sector.readUInt32LE(16);
  const copy = Buffer.from(sector.subarray(0, headerSize));
  copy.writeUInt32LE(0, 16);
  return {
    revision: sector.readUInt32LE(8),
    headerSize,
    headerCrc32,
    currentLba: readUint64(sector, 24, "GPT header: currentLba"),
    backupLba: readUint64(sector, 32, "GPT header: backupLba"),
    firstUsableLba: readUint64(sector, 40, "GPT header: firstUsableLba"),
    lastUsableLba: readUint64(sector, 48, "GPT header: lastUsableLba"),
    diskGuid: decodeGuid(sector, 56),
    entriesLba: readUint64(sector, 72, "GPT header: entriesLba"),
    entryCount: sector.readUInt32LE(80),
    entrySize: sector.readUInt32LE(84),
    entriesCrc32: sector.readUInt32LE(88),
    crcValid: crc32(copy) === headerCrc32,
  };
}

export type GptHeaderFields = Omit<GptHeader, "headerCrc32" | "crcValid" | "revision" | "headerSize"> & {
  revision?: number;
};

function checkLba(name: string, value: number): void {
  if (!Number.isSafeInteger(value) || value < 0) throw new UsageError(`GPT ${name} ${value} is not a valid LBA`);
}

/** Encode a header into a zero-padded sector (512 or 4096 bytes) with its CRC32 computed. */
export function encodeGptHeader(header: GptHeaderFields, sectorSize = 512): Buffer {
  if (sectorSize < GPT_HEADER_SIZE) throw new UsageError(`GPT sector size ${sectorSize} is too small`);
  for (const name of ["currentLba", "backupLba", "firstUsableLba", "lastUsableLba", "entriesLba"] as const) {
    checkLba(name, header[name]);
  }
  if (header.entrySize < GPT_ENTRY_SIZE || header.entrySize % 8 !== 0) {
    throw new UsageError(`GPT entry size ${header.entrySize} must be a multiple of 8, at least ${GPT_ENTRY_SIZE}`);
  }
  const out = Buffer.alloc(sectorSize);
  out.write(GPT_SIGNATURE, 0, "latin1");
  out.writeUInt32LE(header.revision ?? GPT_REVISION_1_0, 8);
  out.writeUInt32LE(GPT_HEADER_SIZE, 12);
  out.writeBigUInt64LE(BigInt(header.currentLba), 24);
  out.writeBigUInt64LE(BigInt(header.backupLba), 32);
  out.writeBigUInt64LE(BigInt(header.firstUsableLba), 40);
  out.writeBigUInt64LE(BigInt(header.lastUsableLba), 48);
  encodeGuid(header.diskGuid, out, 56);
  out.writeBigUInt64LE(BigInt(header.entriesLba), 72);
  out.writeUInt32LE(header.entryCount, 80);
  out.writeUInt32LE(header.entrySize, 84);
  out.writeUInt32LE(header.entriesCrc32 >>> 0, 88);
  out.writeUInt32LE(crc32(out.subarray(0, GPT_HEADER_SIZE)), 16);
  return out;
}

/** An entry whose type GUID is all zeros is an unused slot. */
export function isUnusedGptEntry(entry: GptEntry): boolean {
  return entry.typeGuid === ZERO_GUID;
}

/** Decode one entry (the first 128 bytes of `buf` from `offset`). */
export function decodeGptEntry(buf: Buffer, offset = 0): GptEntry {
  if (buf.length < offset + GPT_ENTRY_SIZE) {
    throw new CorruptImageError(`GPT entry: need ${GPT_ENTRY_SIZE} bytes at ${offset}, got ${buf.length - offset}`);
  }
  const raw = buf.subarray(offset + NAME_OFFSET, offset + NAME_OFFSET + NAME_BYTES);
  let end = 0;
  while (end < NAME_BYTES && (raw[end] !== 0 || raw[end + 1] !== 0)) end += 2;
  return {
    typeGuid: decodeGuid(buf, offset),
    uniqueGuid: decodeGuid(buf, offset + 16),
    firstLba: readUint64(buf, offset + 32, "GPT entry: firstLba"),
    lastLba: readUint64(buf, offset + 40, "GPT entry: lastLba"),
    attributes: buf.readBigUInt64LE(offset + 48),
    name: raw.subarray(0, end).toString("utf16le"),
  };
}

/** Encode one 128-byte entry. The name is UTF-16LE, at most 36 code units. */
export function encodeGptEntry(entry: GptEntry): Buffer {
  const out = Buffer.alloc(GPT_ENTRY_SIZE);
  if (isUnusedGptEntry(entry)) return out;
  checkLba("firstLba", entry.firstLba);
  checkLba("lastLba", entry.lastLba);
  if (entry.lastLba < entry.firstLba) {
    throw new UsageError(`GPT entry: lastLba ${entry.lastLba} is before firstLba ${entry.firstLba}`);
  }
  const name = Buffer.from(entry.name, "utf16le");
  if (name.length > NAME_BYTES) throw new UsageError(`GPT partition name '${entry.name}' is longer than 36 UTF-16 units`);
  encodeGuid(entry.typeGuid, out, 0);
  encodeGuid(entry.uniqueGuid, out, 16);
  out.writeBigUInt64LE(BigInt(entry.firstLba), 32);
  out.writeBigUInt64LE(BigInt(entry.lastLba), 40);
  out.writeBigUInt64LE(BigInt.asUintN(64, entry.attributes), 48);
  name.copy(out, NAME_OFFSET);
  return out;
}

/**
 * The whole entry array: `entries` in slots 0.., unused slots after them up
 * to `count`. Its CRC32 (`crc32(array)`) goes into the header's entriesCrc32.
 */
export function encodeGptEntries(entries: GptEntry[], count = GPT_DEFAULT_ENTRY_COUNT): Buffer {
  if (entries.length > count) throw new UsageError(`${entries.length} GPT entries do not fit in ${count} slots`);
  return Buffer.concat([...entries.map(encodeGptEntry), Buffer.alloc((count - entries.length) * GPT_ENTRY_SIZE)]);
}

/** CRC32 of an entry array, as the header stores it. */
export function gptEntriesCrc32(array: Buffer): number {
  return crc32(array);
}

const ATTRIBUTE_NAMES: Record<number, string> = { 0: "RequiredPartition", 1: "NoBlockIOProtocol", 2: "LegacyBIOSBootable" };

/** Attribute bits as sfdisk --json spells them ("RequiredPartition LegacyBIOSBootable GUID:63"). */
export function gptAttributeNames(attributes: bigint): string[] {
  const names: string[] = [];
  for (let bit = 0; bit < 64; bit++) {
    if (!((attributes >> BigInt(bit)) & 1n)) continue;
    const known = ATTRIBUTE_NAMES[bit];
    if (known) names.push(known);
    else if (bit >= 48) names.push(`GUID:${bit}`);
    else names.push(`bit:${bit}`);
  }
  return names;
}
