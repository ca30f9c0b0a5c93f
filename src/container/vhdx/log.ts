/**
 * The VHDX log: a circular buffer of entries, each a header ("loge"),
 * descriptors ("desc": a 4 KiB sector to write; "zero": a run to zero) and
 * the data sectors ("data") of the desc descriptors, CRC-32C checksummed as
 * a whole. A writer logs metadata changes (the BAT, the metadata region)
 * before making them; when the header's log GUID is set, the changes may
 * not all have reached their places, and every reader must replay the
 * active sequence first.
 *
 * The active sequence (MS-VHDX 2.3.3): the valid entry with the highest
 * sequence number is the head; its tail field says where the sequence
 * starts; every entry from the tail to the head must be valid, contiguous,
 * and number up by one. Replayed here into a list of writes, never onto
 * the file.
 */
import { CorruptImageError, UnsupportedError } from "../../errors.js";
import type { BlockSource } from "../../io/block-source.js";
import { decodeGuid } from "../../partition/guid.js";
import { checksumWithoutField } from "./header.js";

export const LOG_SECTOR = 4096;
const ENTRY_SIGNATURE = "loge";
const HEADER_BYTES = 64;
const DESCRIPTOR_BYTES = 32;
/** Logs are 1 MiB as Hyper-V and qemu make them; a log this large is not a real one. */
const MAX_LOG_BYTES = 32 << 20;

export interface LogEntryHeader {
  entryLength: number;
  tail: number;
  sequenceNumber: bigint;
  descriptorCount: number;
  logGuid: string;
  flushedFileOffset: number;
  lastFileOffset: number;
}

/** One change a log entry makes: a 4 KiB sector, or a run of zeros. */
export type LoggedWrite =
  | { kind: "sector"; fileOffset: number; bytes: Buffer }
  | { kind: "zero"; fileOffset: number; length: number };

export interface ReplayPlan {
  writes: LoggedWrite[];
  /** The file's size once replayed (the head entry's last file offset, if it is larger). */
  lastFileOffset: number;
  entries: number;
  headSequence: bigint;
}

export function decodeLogEntryHeader(buf: Buffer): LogEntryHeader | undefined {
  if (buf.length < HEADER_BYTES || buf.toString("latin1", 0, 4) !== ENTRY_SIGNATURE) return undefined;
  return {
    entryLength: buf.readUInt32LE(8),
    tail: buf.readUInt32LE(12),
    sequenceNumber: buf.readBigUInt64LE(16),
    descriptorCount: buf.readUInt32LE(24),
    logGuid: decodeGuid(buf, 32),
    flushedFileOffset: Number(buf.readBigUInt64LE(48)),
    lastFileOffset: Number(buf.readBigUInt64LE(56)),
  };
}

/** Sectors the header and `count` descriptors take: the header shares the first with 126 descriptors. */
export function descriptorSectors(count: number): number {
  return Math.ceil((count + 2) / (LOG_SECTOR / DESCRIPTOR_BYTES));
}

/** A circular log as read from the file: entries may wrap from its end to its start. */
class CircularLog {
  constructor(
    private readonly file: BlockSource,
    readonly offset: number,
    readonly length: number,
  ) {}

  async read(at: number, length: number): Promise<Buffer> {
    const first = Math.min(length, this.length - at);
    const head = await this.file.read(this.offset + at, first);
    if (first === length) return head;
    return Buffer.concat([head, await this.file.read(this.offset, length - first)]);
  }

  next(at: number, length: number): number {
    return (at + length) % this.length;
  }
}

interface ValidEntry {
  at: number;
  header: LogEntryHeader;
  bytes: Buffer;
}

/**
 * The writes of the active sequence, in order; undefined when the log holds
 * no valid sequence (nothing to replay). `where` names the log in errors.
 */
export async function planReplay(file: BlockSource, logOffset: number, logLength: number, logGuid: string, where: string): Promise<ReplayPlan | undefined> {
  if (logLength === 0 || logLength % (1 << 20) !== 0 || logOffset % (1 << 20) !== 0 || logOffset < 1 << 20) {
    throw new CorruptImageError(`${where}: a log at byte ${logOffset} of ${logLength} bytes (both must be whole MiB, past the first)`);
  }
  if (logLength > MAX_LOG_BYTES) throw new UnsupportedError(`${where}: a ${logLength}-byte log to replay (platter replays logs up to ${MAX_LOG_BYTES} bytes)`);
  if (logOffset + logLength > file.size) throw new CorruptImageError(`${where}: the log at byte ${logOffset} (${logLength} bytes) runs past the end of the file`);
  const log = new CircularLog(file, logOffset, logLength);
  const valid = new Map<number, ValidEntry>();
  for (let at = 0; at < logLength; at += LOG_SECTOR) {
    const entry = await validEntryAt(log, at, logGuid);
    if (entry) valid.set(at, entry);
  }
  const heads = [...valid.values()].sort((a, b) => (a.header.sequenceNumber < b.header.sequenceNumber ? 1 : -1));
  for (const head of heads) {
    const sequence = sequenceEndingAt(log, valid, head);
    if (!sequence) continue;
    if (head.header.flushedFileOffset > file.size) {
      throw new CorruptImageError(
        `${where}: the log says the file held ${head.header.flushedFileOffset} bytes when it was written, but it holds ${file.size}: the image is truncated`,
      );
    }
    return {
      writes: sequence.flatMap((entry) => entryWrites(entry)),
      lastFileOffset: head.header.lastFileOffset,
      entries: sequence.length,
      headSequence: head.header.sequenceNumber,
    };
  }
  return undefined;
}

/** The entry starting at `at` if its header, descriptors, data sectors and checksum all hold. */
async function validEntryAt(log: CircularLog, at: number, logGuid: string): Promise<ValidEntry | undefined> {
  const header = decodeLogEntryHeader(await log.read(at, HEADER_BYTES));
  if (!header || header.logGuid !== logGuid || header.sequenceNumber === 0n) return undefined;
  const { entryLength, descriptorCount } = header;
  if (entryLength === 0 || entryLength % LOG_SECTOR !== 0 || entryLength > log.length) return undefined;
  if (descriptorSectors(descriptorCount) * LOG_SECTOR > entryLength) return undefined;
  const bytes = await log.read(at, entryLength);
  if (bytes.readUInt32LE(4) !== checksumWithoutField(bytes, 4)) return undefined;
  let dataSector = descriptorSectors(descriptorCount);
  for (let i = 0; i < descriptorCount; i++) {
    const d = HEADER_BYTES + i * DESCRIPTOR_BYTES;
    const signature = bytes.toString("latin1", d, d + 4);
    if (bytes.readBigUInt64LE(d + 24) !== header.sequenceNumber || Number(bytes.readBigUInt64LE(d + 16)) % LOG_SECTOR !== 0) return undefined;
    if (signature === "zero") {
      if (Number(bytes.readBigUInt64LE(d + 8)) % LOG_SECTOR !== 0) return undefined;
    } else if (signature === "desc") {
      const s = dataSector++ * LOG_SECTOR;
      if (s + LOG_SECTOR > entryLength || bytes.toString("latin1", s, s + 4) !== "data") return undefined;
      const sequence = (BigInt(bytes.readUInt32LE(s + 4)) << 32n) | BigInt(bytes.readUInt32LE(s + LOG_SECTOR - 4));
      if (sequence !== header.sequenceNumber) return undefined;
    } else {
      return undefined;
    }
  }
  return { at, header, bytes };
}

/** The entries from `head`'s tail to `head`, if they chain: contiguous, numbered up by one. */
function sequenceEndingAt(log: CircularLog, valid: Map<number, ValidEntry>, head: ValidEntry): ValidEntry[] | undefined {
  const sequence: ValidEntry[] = [];
  let at = head.header.tail;
  for (let steps = 0; steps <= valid.size; steps++) {
    const entry = valid.get(at);
    if (!entry) return undefined;
    const previous = sequence[sequence.length - 1];
    if (previous && entry.header.sequenceNumber !== previous.header.sequenceNumber + 1n) return undefined;
    sequence.push(entry);
    if (entry === head) return sequence;
    at = log.next(at, entry.header.entryLength);
  }
  return undefined;
}

/** What an entry writes: each desc's sector is its 8 leading bytes, the data sector's 4084, its 4 trailing bytes. */
function entryWrites(entry: ValidEntry): LoggedWrite[] {
  const { bytes, header } = entry;
  const writes: LoggedWrite[] = [];
  let dataSector = descriptorSectors(header.descriptorCount);
  for (let i = 0; i < header.descriptorCount; i++) {
    const d = HEADER_BYTES + i * DESCRIPTOR_BYTES;
    const fileOffset = Number(bytes.readBigUInt64LE(d + 16));
    if (bytes.toString("latin1", d, d + 4) === "zero") {
      writes.push({ kind: "zero", fileOffset, length: Number(bytes.readBigUInt64LE(d + 8)) });
      continue;
    }
    const s = dataSector++ * LOG_SECTOR;
    const sector = Buffer.allocUnsafe(LOG_SECTOR);
    bytes.copy(sector, 0, d + 8, d + 16);
    bytes.copy(sector, 8, s + 8, s + LOG_SECTOR - 4);
    bytes.copy(sector, LOG_SECTOR - 4, d + 4, d + 8);
    writes.push({ kind: "sector", fileOffset, bytes: sector });
  }
  return writes;
}
