/**
 * Where the bytes of one file section are (ECMA-119 6.4), as a directory
 * record says: the extent starts with the extended attribute record, if any
 * (byte 1: its length in logical blocks), and the data follows it (9.1.4: the
 * data length does not count the EAR). The data is contiguous, or recorded in
 * interleaved mode: units of `unitBlocks` blocks separated by gaps of
 * `gapBlocks` blocks (bytes 26 and 27).
 */
import { CorruptImageError, UnsupportedError } from "../../errors.js";
import { SECTOR_SIZE } from "./constants.js";
import type { DirectoryRecord } from "./directory-record.js";

export interface FileSection {
  /** First block of the data: the extent's first block plus the EAR's length. */
  block: number;
  /** Bytes of data. */
  length: number;
  /** Interleaved mode: blocks per file unit; 0 when the data is contiguous. */
  unitBlocks: number;
  /** Interleaved mode: blocks between two file units. */
  gapBlocks: number;
  /** Blocks of the extended attribute record before the data. */
  earBlocks: number;
}

export function fileSection(record: DirectoryRecord): FileSection {
  return {
    block: record.extent + record.extAttrLength,
    length: record.dataLength,
    unitBlocks: record.fileUnitSize,
    gapBlocks: record.interleaveGap,
    earBlocks: record.extAttrLength,
  };
}

/**
 * Refuse what cannot be read as the record says: a gap without units is
 * corrupt (9.1.8: both are 0 unless interleaved). An interleaved section
 * with an EAR is refused: ECMA-119 lets the EAR take the first units, and no
 * writer or reader we can compare with (Linux reads interleaved files as
 * empty) shows where its data then starts.
 */
export function checkSection(section: FileSection, where: string): void {
  if (section.unitBlocks === 0 && section.gapBlocks !== 0) {
    throw new CorruptImageError(`${where}: interleave gap of ${section.gapBlocks} blocks without a file unit size`);
  }
  if (section.unitBlocks !== 0 && section.earBlocks !== 0) {
    throw new UnsupportedError(`${where}: an interleaved file with an extended attribute record, which platter does not read`);
  }
}

/**
 * The image byte ranges holding bytes [from, to) of the section, in order, as
 * [image offset, length]: one range when contiguous, one per file unit touched
 * when interleaved.
 */
export function* sectionRanges(section: FileSection, from: number, to: number): Generator<[number, number]> {
  const start = section.block * SECTOR_SIZE;
  if (section.unitBlocks === 0) {
    if (from < to) yield [start + from, to - from];
    return;
  }
  const unitBytes = section.unitBlocks * SECTOR_SIZE;
  const stride = (section.unitBlocks + section.gapBlocks) * SECTOR_SIZE;
  for (let at = from; at < to; ) {
    const unit = Math.floor(at / unitBytes);
    const inUnit = at - unit * unitBytes;
    const n = Math.min(unitBytes - inUnit, to - at);
    yield [start + unit * stride + inUnit, n];
    at += n;
  }
}
