/**
 * The Master Boot Record (sector 0) and the Extended Boot Records of a
 * logical-partition chain share one layout: 446 bytes of boot code, four
 * 16-byte entries at 446, and the 0x55 0xAA signature at 510. The MBR also
 * holds the disk signature at 440. Pure codecs: no I/O.
 *
 * CHS fields are decoded (kept so an entry round-trips) but never used to
 * locate anything: the LBA fields are the truth, as in Linux and sfdisk.
 */
import { CorruptImageError, UsageError } from "../errors.js";

export const MBR_SIZE = 512;
export const MBR_ENTRIES_OFFSET = 446;
export const MBR_ENTRY_SIZE = 16;
const DISK_SIGNATURE_OFFSET = 440;
const BOOT_SIGNATURE_OFFSET = 510;

/** Extended-partition types whose entries point at an EBR chain (Linux's list). */
export const EXTENDED_TYPES: ReadonlySet<number> = new Set([0x05, 0x0f, 0x85]);
export const GPT_PROTECTIVE_TYPE = 0xee;

export interface MbrEntry {
  /** 0x80 = active (bootable), 0x00 = not; anything else is invalid. */
  status: number;
  type: number;
  /** First sector: absolute in the MBR; relative (to the EBR or the extended start) in an EBR. */
  startLba: number;
  sectors: number;
  /** The raw 3-byte CHS addresses; encodeMbr computes them from the LBAs when absent. */
  chsStart?: Buffer;
  chsEnd?: Buffer;
}

export interface Mbr {
  /** The first 440 bytes (boot code); encodeMbr writes zeros when absent. */
  bootCode?: Buffer;
  /** The disk signature (the "disk identifier" sfdisk prints as 0x5eed0001). */
  diskSignature: number;
  /** Always four entries; an unused one has `sectors === 0`. */
  entries: MbrEntry[];
  /** The 0x55 0xAA boot signature is present. */
  signatureValid: boolean;
}

/** An entry describes a partition when it has a size (Linux and libfdisk ignore the type here). */
export function isUsedEntry(entry: MbrEntry): boolean {
  return entry.sectors !== 0;
}

export function isExtendedType(type: number): boolean {
  return EXTENDED_TYPES.has(type);
}

function decodeEntry(buf: Buffer, offset: number): MbrEntry {
  return {
    status: buf[offset],
    chsStart: Buffer.from(buf.subarray(offset + 1, offset + 4)),
    type: buf[offset + 4],
    chsEnd: Buffer.from(buf.subarray(offset + 5, offset + 8)),
    startLba: buf.readUInt32LE(offset + 8),
    sectors: buf.readUInt32LE(offset + 12),
  };
}

/** Decode sector 0 (or an EBR). Throws only when fewer than 512 bytes are given. */
export function decodeMbr(sector: Buffer): Mbr {
  if (sector.length < MBR_SIZE) {
    throw new CorruptImageError(`MBR: need ${MBR_SIZE} bytes, got ${sector.length}`);
  }
  const entries: MbrEntry[] = [];
  for (let i = 0; i < 4; i++) entries.push(decodeEntry(sector, MBR_ENTRIES_OFFSET + i * MBR_ENTRY_SIZE));
  return {
    bootCode: Buffer.from(sector.subarray(0, DISK_SIGNATURE_OFFSET)),
    diskSignature: sector.readUInt32LE(DISK_SIGNATURE_OFFSET),
    entries,
    signatureValid: sector[BOOT_SIGNATURE_OFFSET] === 0x55 && sector[BOOT_SIGNATURE_OFFSET + 1] === 0xaa,
  };
}

/**
 * The CHS address of an LBA in the conventional 255-head, 63-sector
 * geometry sfdisk and xorriso use; past cylinder 1023 the "maxed out"
 * value FE FF FF that every modern tool writes.
 */
export function chsFromLba(lba: number, heads = 255, sectorsPerTrack = 63): Buffer {
  const cylinder = Math.floor(lba / (heads * sectorsPerTrack));
  if (cylinder > 1023) return Buffer.from([0xfe, 0xff, 0xff]);
  const head = Math.floor(lba / sectorsPerTrack) % heads;
  const sector = (lba % sectorsPerTrack) + 1;
  return Buffer.from([head, ((cylinder >> 2) & 0xc0) | sector, cylinder & 0xff]);
}

function checkField(name: string, value: number, max: number): void {
  if (!Number.isInteger(value) || value < 0 || value > max) {
    throw new UsageError(`MBR entry ${name} ${value} is out of range (0..${max})`);
  }
}

function encodeEntry(entry: MbrEntry, into: Buffer, offset: number): void {
  checkField("status", entry.status, 0xff);
  checkField("type", entry.type, 0xff);
  checkField("startLba", entry.startLba, 0xffffffff);
  checkField("sectors", entry.sectors, 0xffffffff);
  if (entry.sectors === 0 && entry.type === 0) return; // an unused slot stays all zeros
  into[offset] = entry.status;
  (entry.chsStart ?? chsFromLba(entry.startLba)).copy(into, offset + 1, 0, 3);
  into[offset + 4] = entry.type;
  (entry.chsEnd ?? chsFromLba(entry.startLba + Math.max(entry.sectors, 1) - 1)).copy(into, offset + 5, 0, 3);
  into.writeUInt32LE(entry.startLba, offset + 8);
  into.writeUInt32LE(entry.sectors, offset + 12);
}

/** Encode a 512-byte MBR (or EBR). Missing entries are unused; the signature is always written. */
export function encodeMbr(mbr: { bootCode?: Buffer; diskSignature?: number; entries: MbrEntry[] }): Buffer {
  if (mbr.entries.length > 4) throw new UsageError(`an MBR holds 4 entries, got ${mbr.entries.length}`);
  const out = Buffer.alloc(MBR_SIZE);
  if (mbr.bootCode) mbr.bootCode.copy(out, 0, 0, Math.min(mbr.bootCode.length, DISK_SIGNATURE_OFFSET));
  checkField("disk signature", mbr.diskSignature ?? 0, 0xffffffff);
  out.writeUInt32LE(mbr.diskSignature ?? 0, DISK_SIGNATURE_OFFSET);
  mbr.entries.forEach((entry, i) => encodeEntry(entry, out, MBR_ENTRIES_OFFSET + i * MBR_ENTRY_SIZE));
  out[BOOT_SIGNATURE_OFFSET] = 0x55;
  out[BOOT_SIGNATURE_OFFSET + 1] = 0xaa;
  return out;
}

/**
 * One link of the logical-partition chain. Data entries are relative to this
 * EBR's own sector; the link to the next EBR is relative to the start of the
 * primary extended partition (that asymmetry is the classic EBR trap).
 */
export interface Ebr {
  /** Used, non-extended entries with their slot (0-3): usually one, in slot 0. */
  data: Array<{ slot: number; entry: MbrEntry }>;
  /** The first used extended entry: where the next EBR is. */
  next: MbrEntry | null;
  signatureValid: boolean;
}

/**
 * Decode an EBR the way Linux does: every used non-extended entry is a
 * logical partition (DRDOS and OS/2 use more than slot 0; the reader checks
 * slots 2-3 against the extended partition's bounds), and the first used
 * extended entry links to the next EBR.
 */
export function decodeEbr(sector: Buffer): Ebr {
  const { entries, signatureValid } = decodeMbr(sector);
  const data = entries
    .map((entry, slot) => ({ slot, entry }))
    .filter(({ entry }) => isUsedEntry(entry) && !isExtendedType(entry.type));
  const next = entries.find((e) => isUsedEntry(e) && isExtendedType(e.type)) ?? null;
  return { data, next, signatureValid };
}

/** Encode an EBR: entry 0 the logical partition, entry 1 the link to the next EBR. */
export function encodeEbr(ebr: { logical: MbrEntry | null; next: MbrEntry | null }): Buffer {
  const unused: MbrEntry = { status: 0, type: 0, startLba: 0, sectors: 0 };
  return encodeMbr({ entries: [ebr.logical ?? unused, ebr.next ?? unused] });
}
