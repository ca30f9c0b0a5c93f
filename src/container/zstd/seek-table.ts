/**
 * The seek table of the zstd seekable format (facebook/zstd
 * contrib/seekable_format/zstd_seekable_compression_format.md): a skippable
 * frame at the very end of the file, whose entries give each frame's
 * compressed and decompressed size (and, with the checksum flag, the low 32
 * bits of the XXH64 of its decompressed bytes), then a 9-byte footer:
 * Number_Of_Frames (u32), Seek_Table_Descriptor (bit 7: checksums; bits 6-2
 * reserved, must be 0), Seekable_Magic_Number 0x8F92EAB1. Every zstd tool
 * skips the table as an ordinary skippable frame.
 */

export const SEEK_TABLE_MAGIC = 0x184d2a5e;
export const SEEKABLE_MAGIC = 0x8f92eab1;
export const SEEK_TABLE_FOOTER = 9;
/** ZSTD_SEEKABLE_MAXFRAMES in the reference implementation. */
export const MAX_SEEKABLE_FRAMES = 0x8000000;
const CHECKSUM_FLAG = 0x80;
const RESERVED_BITS = 0x7c;

export interface SeekTableEntry {
  compressedSize: number;
  decompressedSize: number;
  /** Low 32 bits of XXH64 of the frame's decompressed bytes, when the table has checksums. */
  checksum?: number;
}

export interface SeekTableFooter {
  frames: number;
  hasChecksums: boolean;
}

/** The whole skippable frame's size: magic, size, entries, footer. */
export function seekTableSize(footer: SeekTableFooter): number {
  return 8 + footer.frames * (footer.hasChecksums ? 12 : 8) + SEEK_TABLE_FOOTER;
}

/**
 * The last 9 bytes of a file: null when they are not a seek table footer
 * (the file has none), a reason string when they are one that cannot be.
 */
export function decodeSeekTableFooter(tail: Buffer): SeekTableFooter | null | string {
  if (tail.length < SEEK_TABLE_FOOTER || tail.readUInt32LE(tail.length - 4) !== SEEKABLE_MAGIC) return null;
  const at = tail.length - SEEK_TABLE_FOOTER;
  const frames = tail.readUInt32LE(at);
  const descriptor = tail[at + 4] as number;
  if (descriptor & RESERVED_BITS) return `reserved bits set in the seek table descriptor (0x${descriptor.toString(16)})`;
  if (frames > MAX_SEEKABLE_FRAMES) return `the seek table claims ${frames} frames (at most ${MAX_SEEKABLE_FRAMES})`;
  return { frames, hasChecksums: (descriptor & CHECKSUM_FLAG) !== 0 };
}

/** The entries of a seek table, column by column (a table may list millions of frames). */
export interface SeekTableEntries {
  compressedSizes: Uint32Array;
  decompressedSizes: Uint32Array;
  /** Present when the table has checksums. */
  checksums?: Uint32Array;
}

/** The entries of the skippable frame `table` (exactly seekTableSize(footer) bytes), or a reason string. */
export function decodeSeekTable(table: Buffer, footer: SeekTableFooter): SeekTableEntries | string {
  if (table.length !== seekTableSize(footer)) return "seek table size mismatch";
  if (table.readUInt32LE(0) !== SEEK_TABLE_MAGIC) return `the seek table does not start with the skippable magic 0x${SEEK_TABLE_MAGIC.toString(16)}`;
  if (table.readUInt32LE(4) !== table.length - 8) {
    return `the seek table frame says it holds ${table.readUInt32LE(4)} bytes, its ${footer.frames} entries and footer take ${table.length - 8}`;
  }
  const entrySize = footer.hasChecksums ? 12 : 8;
  const entries: SeekTableEntries = {
    compressedSizes: new Uint32Array(footer.frames),
    decompressedSizes: new Uint32Array(footer.frames),
    checksums: footer.hasChecksums ? new Uint32Array(footer.frames) : undefined,
  };
  for (let i = 0, at = 8; i < footer.frames; i++, at += entrySize) {
    entries.compressedSizes[i] = table.readUInt32LE(at);
    entries.decompressedSizes[i] = table.readUInt32LE(at + 4);
    if (entries.checksums) entries.checksums[i] = table.readUInt32LE(at + 8);
  }
  return entries;
}

export function encodeSeekTable(entries: Iterable<SeekTableEntry>, count: number, hasChecksums: boolean): Buffer {
  const footer = { frames: count, hasChecksums };
  const table = Buffer.alloc(seekTableSize(footer));
  table.writeUInt32LE(SEEK_TABLE_MAGIC, 0);
  table.writeUInt32LE(table.length - 8, 4);
  const entrySize = hasChecksums ? 12 : 8;
  let i = 0;
  for (const e of entries) {
    const at = 8 + i++ * entrySize;
    table.writeUInt32LE(e.compressedSize, at);
    table.writeUInt32LE(e.decompressedSize, at + 4);
    if (hasChecksums) table.writeUInt32LE(e.checksum ?? 0, at + 8);
  }
  if (i !== count) throw new RangeError(`seek table of ${count} entries given ${i}`);
  const at = table.length - SEEK_TABLE_FOOTER;
  table.writeUInt32LE(count, at);
  table[at + 4] = hasChecksums ? CHECKSUM_FLAG : 0;
  table.writeUInt32LE(SEEKABLE_MAGIC, at + 5);
  return table;
}
