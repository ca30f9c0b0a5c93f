/**
 * El Torito (bootable CD-ROM format specification 1.0): a boot record volume
 * descriptor points to the boot catalogue, one sector of 32-byte entries
 * naming the boot images: a validation entry, the default (initial) entry,
 * then sections of further entries per platform (UEFI is platform 0xEF).
 * Plus the boot info table that `mkisofs -boot-info-table` patches into a
 * no-emulation boot image so the loader can find itself (isolinux, GRUB).
 */
import { CorruptImageError } from "../../errors.js";
import { SECTOR_SIZE, STANDARD_ID } from "./constants.js";
import { VD_BOOT_RECORD } from "./volume-descriptor.js";

export const EL_TORITO_ID = "EL TORITO SPECIFICATION";

export const PLATFORM_X86 = 0x00;
export const PLATFORM_POWERPC = 0x01;
export const PLATFORM_MAC = 0x02;
export const PLATFORM_EFI = 0xef;

export const MEDIA_NO_EMULATION = 0;

const ENTRY_SIZE = 32;
const HEADER_VALIDATION = 0x01;
const HEADER_MORE = 0x90;
const HEADER_FINAL = 0x91;
const ENTRY_EXTENSION = 0x44;
const BOOTABLE = 0x88;
const NOT_BOOTABLE = 0x00;

export function platformName(platform: number): string {
  return { 0: "x86", 1: "PowerPC", 2: "Mac", 0xef: "UEFI" }[platform] ?? `0x${platform.toString(16).padStart(2, "0")}`;
}

export function emulationName(mediaType: number): string {
  return ["none", "1.2M floppy", "1.44M floppy", "2.88M floppy", "hard disk"][mediaType & 0x0f] ?? `type ${mediaType & 0x0f}`;
}

/** Boot record volume descriptor (type 0) with the catalogue's block. */
export function encodeBootRecord(catalogBlock: number): Buffer {
  const buf = Buffer.alloc(SECTOR_SIZE);
  buf[0] = VD_BOOT_RECORD;
  buf.write(STANDARD_ID, 1, "latin1");
  buf[6] = 1;
  buf.write(EL_TORITO_ID, 7, "latin1");
  buf.writeUInt32LE(catalogBlock, 71);
  return buf;
}

/** The catalogue's block if this descriptor is an El Torito boot record, else undefined. */
export function decodeBootRecord(buf: Buffer): number | undefined {
  if (buf[0] !== VD_BOOT_RECORD || buf.toString("latin1", 1, 6) !== STANDARD_ID) return undefined;
  if (buf.toString("latin1", 7, 7 + EL_TORITO_ID.length) !== EL_TORITO_ID) return undefined;
  return buf.readUInt32LE(71);
}

export interface BootEntry {
  /** Platform of the section the entry is in (the validation entry's for the default entry). */
  platform: number;
  bootable: boolean;
  /** Low 4 bits: 0 no emulation, 1-3 floppy, 4 hard disk. */
  mediaType: number;
  /** Real-mode segment to load at; 0 means the BIOS default 0x7C0. */
  loadSegment: number;
  /** Partition type byte of a hard-disk image (0 otherwise). */
  systemType: number;
  /** Virtual 512-byte sectors the BIOS loads (no emulation). */
  sectorCount: number;
  /** Block of the boot image. */
  loadRba: number;
  /** Section entries: selection criteria type and vendor bytes. */
  selectionCriteria?: Buffer;
}

export interface BootCatalog {
  /** Platform of the validation entry, which the default entry boots. */
  platform: number;
  /** Manufacturer / developer id string of the validation entry. */
  idString: string;
  /** The default entry first, then the section entries in order. */
  entries: BootEntry[];
}

function encodeEntry(e: BootEntry, out: Buffer, o: number): void {
  out[o] = e.bootable ? BOOTABLE : NOT_BOOTABLE;
  out[o + 1] = e.mediaType;
  out.writeUInt16LE(e.loadSegment, o + 2);
  out[o + 4] = e.systemType;
  out.writeUInt16LE(e.sectorCount, o + 6);
  out.writeUInt32LE(e.loadRba, o + 8);
  e.selectionCriteria?.copy(out, o + 12, 0, 20);
}

function decodeEntry(buf: Buffer, o: number, platform: number, section: boolean): BootEntry {
  const entry: BootEntry = {
    platform,
    bootable: buf[o] === BOOTABLE,
    mediaType: buf[o + 1],
    loadSegment: buf.readUInt16LE(o + 2),
    systemType: buf[o + 4],
    sectorCount: buf.readUInt16LE(o + 6),
    loadRba: buf.readUInt32LE(o + 8),
  };
  if (section) entry.selectionCriteria = Buffer.from(buf.subarray(o + 12, o + 32));
  return entry;
}

/** Sum of the little-endian 16-bit words of a validation entry (must be 0 mod 65536). */
function validationSum(buf: Buffer, o: number): number {
  let sum = 0;
  for (let i = 0; i < ENTRY_SIZE; i += 2) sum = (sum + buf.readUInt16LE(o + i)) & 0xffff;
  return sum;
}

/**
 * One catalogue sector. Entries after the default one are grouped into one
 * section per run of equal platforms.
 */
export function encodeBootCatalog(catalog: BootCatalog): Buffer {
  const [first, ...rest] = catalog.entries;
  if (!first) throw new RangeError("a boot catalogue needs at least one entry");
  const sections: BootEntry[][] = [];
  for (const e of rest) {
    const current = sections[sections.length - 1];
    if (current && current[0].platform === e.platform) current.push(e);
    else sections.push([e]);
  }
  const needed = ENTRY_SIZE * (2 + sections.length + rest.length);
  if (needed > SECTOR_SIZE) throw new RangeError(`boot catalogue of ${needed} bytes does not fit one sector`);
  const buf = Buffer.alloc(SECTOR_SIZE);
  buf[0] = HEADER_VALIDATION;
  buf[1] = catalog.platform;
  buf.write(catalog.idString.slice(0, 24), 4, 24, "latin1");
  buf[30] = 0x55;
  buf[31] = 0xaa;
  buf.writeUInt16LE((0x10000 - validationSum(buf, 0)) & 0xffff, 28);
  encodeEntry(first, buf, ENTRY_SIZE);
  let o = 2 * ENTRY_SIZE;
  sections.forEach((entries, i) => {
    buf[o] = i === sections.length - 1 ? HEADER_FINAL : HEADER_MORE;
    buf[o + 1] = entries[0].platform;
    buf.writeUInt16LE(entries.length, o + 2);
    o += ENTRY_SIZE;
    for (const e of entries) {
      encodeEntry(e, buf, o);
      o += ENTRY_SIZE;
    }
  });
  return buf;
}

/**
 * The catalogue in `buf`. Every entry is bounds-checked: one that would lie
 * past `buf` is a CorruptImageError naming it.
 */
export function decodeBootCatalog(buf: Buffer, where = "El Torito boot catalogue"): BootCatalog {
  if (buf.length < 2 * ENTRY_SIZE || buf[0] !== HEADER_VALIDATION || buf[30] !== 0x55 || buf[31] !== 0xaa) {
    throw new CorruptImageError(`${where}: no validation entry (header 01, key 55 AA)`);
  }
  if (validationSum(buf, 0) !== 0) throw new CorruptImageError(`${where}: validation entry checksum does not add up to 0`);
  const platform = buf[1];
  const catalog: BootCatalog = {
    platform,
    idString: buf.toString("latin1", 4, 28).replace(/[\0 ]+$/, ""),
    entries: [decodeEntry(buf, ENTRY_SIZE, platform, false)],
  };
  let o = 2 * ENTRY_SIZE;
  for (let section = 1; o + ENTRY_SIZE <= buf.length; section++) {
    const header = buf[o];
    if (header !== HEADER_MORE && header !== HEADER_FINAL) break;
    const sectionPlatform = buf[o + 1];
    const count = buf.readUInt16LE(o + 2);
    o += ENTRY_SIZE;
    for (let i = 1; i <= count; i++) {
      if (o + ENTRY_SIZE > buf.length) {
        throw new CorruptImageError(`${where}: entry ${i} of the ${count} in section ${section} would be at byte ${o}, past the catalogue's ${buf.length} bytes`);
      }
      catalog.entries.push(decodeEntry(buf, o, sectionPlatform, true));
      o += ENTRY_SIZE;
      // Extension entries (0x44) continue this entry's selection criteria; skip them.
      while (o + ENTRY_SIZE <= buf.length && buf[o] === ENTRY_EXTENSION) o += ENTRY_SIZE;
    }
    if (header === HEADER_FINAL) break;
  }
  return catalog;
}

export const BOOT_INFO_TABLE_OFFSET = 8;
export const BOOT_INFO_TABLE_SIZE = 56;
/** The checksum covers the boot image from byte 64 on. */
export const BOOT_INFO_CHECKSUM_START = 64;

export interface BootInfoTable {
  /** Block of the primary volume descriptor (16). */
  pvdBlock: number;
  /** Block of the boot image itself. */
  fileBlock: number;
  fileLength: number;
  /** Sum of the image's little-endian 32-bit words from byte 64 to its end. */
  checksum: number;
}

export function encodeBootInfoTable(t: BootInfoTable): Buffer {
  const buf = Buffer.alloc(BOOT_INFO_TABLE_SIZE);
  buf.writeUInt32LE(t.pvdBlock, 0);
  buf.writeUInt32LE(t.fileBlock, 4);
  buf.writeUInt32LE(t.fileLength, 8);
  buf.writeUInt32LE(t.checksum >>> 0, 12);
  return buf;
}

export function decodeBootInfoTable(buf: Buffer): BootInfoTable {
  return {
    pvdBlock: buf.readUInt32LE(0),
    fileBlock: buf.readUInt32LE(4),
    fileLength: buf.readUInt32LE(8),
    checksum: buf.readUInt32LE(12),
  };
}

/**
 * Running boot-info checksum: feed the image's bytes from offset 64 in order,
 * in chunks of any size; a last partial word counts as zero-padded.
 */
export class BootInfoChecksum {
  private sum = 0;
  private carry = Buffer.alloc(0);

  update(chunk: Buffer): void {
    const data = this.carry.length ? Buffer.concat([this.carry, chunk]) : chunk;
    const whole = data.length - (data.length % 4);
    let sum = this.sum;
    for (let i = 0; i < whole; i += 4) sum = (sum + data.readUInt32LE(i)) >>> 0;
    this.sum = sum;
    this.carry = Buffer.from(data.subarray(whole));
  }

  digest(): number {
    if (this.carry.length === 0) return this.sum;
    const last = Buffer.alloc(4);
    this.carry.copy(last);
    return (this.sum + last.readUInt32LE(0)) >>> 0;
  }
}
