import { CorruptImageError } from "../../errors.js";
import { readUint64 } from "../../util/uint64.js";

/**
 * exFAT directory entries are 32 bytes; the first byte is the type (bit 7:
 * in use, bit 6: secondary, bits 0-4: code). A file is an entry set: a file
 * entry (0x85), a stream extension (0xC0: sizes and first cluster), then
 * file name entries (0xC1: 15 UTF-16 units each), guarded by a 16-bit checksum.
 */
export const ENTRY_SIZE = 32;
export const EntryType = {
  endOfDirectory: 0x00,
  allocationBitmap: 0x81,
  upcaseTable: 0x82,
  volumeLabel: 0x83,
  file: 0x85,
  streamExtension: 0xc0,
  fileName: 0xc1,
} as const;
export const IN_USE = 0x80;

export const Attribute = { readOnly: 0x01, hidden: 0x02, system: 0x04, directory: 0x10, archive: 0x20 } as const;
const NO_FAT_CHAIN = 0x02;
const NAME_UNITS_PER_ENTRY = 15;

export interface FileEntrySet {
  name: string;
  attributes: number;
  modified: { timestamp: number; tenMs: number; utcOffset: number };
  firstCluster: number;
  /** Clusters are consecutive from firstCluster; the FAT is not consulted. */
  noFatChain: boolean;
  dataLength: number;
  /** Bytes past this read as zeros (space allocated but never written). */
  validDataLength: number;
}

/** The set checksum: rotate-right-and-add over every byte of the set but the checksum field itself. */
export function entrySetChecksum(set: Buffer): number {
  let sum = 0;
  for (let i = 0; i < set.length; i++) {
    if (i === 2 || i === 3) continue;
    sum = ((sum & 1 ? 0x8000 : 0) + (sum >>> 1) + (set[i] as number)) & 0xffff;
  }
  return sum;
}

/** Decode one file entry set (1 + SecondaryCount entries), checksum verified. `where` names it in errors. */
export function decodeFileEntrySet(set: Buffer, where: string): FileEntrySet {
  const secondaryCount = set[1] as number;
  if (set.length !== (1 + secondaryCount) * ENTRY_SIZE) throw new CorruptImageError(`exFAT ${where}: entry set is truncated`);
  const stored = set.readUInt16LE(2);
  const computed = entrySetChecksum(set);
  if (stored !== computed) {
    throw new CorruptImageError(`exFAT ${where}: entry set checksum 0x${stored.toString(16)} does not match 0x${computed.toString(16)}`);
  }
  if (secondaryCount < 2) throw new CorruptImageError(`exFAT ${where}: file entry has ${secondaryCount} secondary entries (at least 2)`);
  const stream = set.subarray(ENTRY_SIZE, 2 * ENTRY_SIZE);
  if (stream[0] !== EntryType.streamExtension) {
    throw new CorruptImageError(`exFAT ${where}: file entry is not followed by a stream extension (type 0x${(stream[0] as number).toString(16)})`);
  }
  const nameLength = stream[3] as number;
  const nameEntries = Math.ceil(nameLength / NAME_UNITS_PER_ENTRY);
  if (nameLength === 0 || 1 + nameEntries > secondaryCount) {
    throw new CorruptImageError(`exFAT ${where}: name of ${nameLength} characters does not fit ${secondaryCount - 1} name entries`);
  }
  const units: Buffer[] = [];
  for (let i = 0; i < nameEntries; i++) {
    const entry = set.subarray((2 + i) * ENTRY_SIZE, (3 + i) * ENTRY_SIZE);
    if (entry[0] !== EntryType.fileName) throw new CorruptImageError(`exFAT ${where}: name entry ${i + 1} has type 0x${(entry[0] as number).toString(16)}`);
    units.push(entry.subarray(2, 2 + NAME_UNITS_PER_ENTRY * 2));
  }
  const name = Buffer.concat(units).subarray(0, nameLength * 2).toString("utf16le");
  const flags = stream[1] as number;
  const result: FileEntrySet = {
    name,
    attributes: set.readUInt16LE(4),
    modified: { timestamp: set.readUInt32LE(12), tenMs: set[21] as number, utcOffset: set[23] as number },
    firstCluster: stream.readUInt32LE(20),
    noFatChain: (flags & NO_FAT_CHAIN) !== 0,
    validDataLength: readUint64(stream, 8, `exFAT entry "${name}": ValidDataLength`),
    dataLength: readUint64(stream, 24, `exFAT entry "${name}": DataLength`),
  };
  if (result.validDataLength > result.dataLength) {
    throw new CorruptImageError(`exFAT entry "${name}": ValidDataLength ${result.validDataLength} exceeds DataLength ${result.dataLength}`);
  }
  return result;
}

/** The volume label entry: up to 11 UTF-16 units. */
export function decodeVolumeLabel(entry: Buffer): string {
  const count = Math.min(entry[1] as number, 11);
  return entry.subarray(2, 2 + count * 2).toString("utf16le");
}
