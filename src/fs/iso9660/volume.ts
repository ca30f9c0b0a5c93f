/**
 * What an ISO 9660 image says about itself before any file is read: the
 * volume descriptor set (primary, Joliet, El Torito boot record) and whether
 * the root carries SUSP / Rock Ridge. `platter info` prints this, with the El
 * Torito boot catalogue (read only for it: reading files never needs it); the
 * reader starts from it.
 */
import type { BlockSource } from "../../io/block-source.js";
import { CorruptImageError } from "../../errors.js";
import { FIRST_DESCRIPTOR_SECTOR, SECTOR_SIZE } from "./constants.js";
import { decodeDirectoryRecord } from "./directory-record.js";
import { decodeBootCatalog, decodeBootRecord, type BootCatalog } from "./el-torito.js";
import { fileSection } from "./file-section.js";
import { isRockRidgeSignature, ROCK_RIDGE_IDS } from "./rrip.js";
import { decodeEr, decodeSp, decodeSuspEntries, type SuspEntry } from "./susp.js";
import { readSuspArea } from "./susp-reader.js";
import {
  decodeHeader,
  decodePrimaryVolumeDescriptor,
  isJolietEscape,
  TEXT_FIELD_NAMES,
  VD_BOOT_RECORD,
  VD_PRIMARY,
  VD_SUPPLEMENTARY,
  VD_TERMINATOR,
  type PrimaryVolumeDescriptor,
  type TextField,
} from "./volume-descriptor.js";

/** Descriptor sets longer than this are not real (some writers add a few; none add 64). */
const MAX_DESCRIPTORS = 64;

/** The identification fields of a volume descriptor: its text fields and dates. */
const VOLUME_ID_FIELDS = [...TEXT_FIELD_NAMES, "creation", "modification"] as const;
export type IsoVolumeIds = Pick<PrimaryVolumeDescriptor, TextField | "creation" | "modification">;

export interface IsoVolume {
  primary: PrimaryVolumeDescriptor;
  joliet: PrimaryVolumeDescriptor | null;
  /** Joliet UCS-2 level (1-3), or 0 without Joliet. */
  jolietLevel: number;
  /** Bytes to skip before the SUSP entries of each record (SP's LEN_SKP), or null without SUSP. */
  suspSkip: number | null;
  /** The Rock Ridge identifier from the ER entry ("IEEE_1282", "RRIP_1991A"), "unknown" if RR entries appear without one, or null. */
  rockRidge: string | null;
  /** Where the El Torito boot catalogue is (readBootCatalog reads it), or null. */
  bootCatalogBlock: number | null;
}

export function volumeIds(vd: PrimaryVolumeDescriptor): IsoVolumeIds {
  return Object.fromEntries(VOLUME_ID_FIELDS.map((field) => [field, vd[field]])) as IsoVolumeIds;
}

/** True if the source has an ISO 9660 volume descriptor at sector 16 (a cheap probe). */
export async function looksLikeIso9660(source: BlockSource): Promise<boolean> {
  if (source.size < (FIRST_DESCRIPTOR_SECTOR + 1) * SECTOR_SIZE) return false;
  const header = decodeHeader(await source.read(FIRST_DESCRIPTOR_SECTOR * SECTOR_SIZE, 7));
  return header !== null;
}

export async function readIsoVolume(source: BlockSource): Promise<IsoVolume> {
  const name = source.name;
  if (!(await looksLikeIso9660(source))) {
    throw new CorruptImageError(`${name}: not an ISO 9660 image (no CD001 volume descriptor at sector 16)`);
  }
  let primary: PrimaryVolumeDescriptor | null = null;
  let joliet: PrimaryVolumeDescriptor | null = null;
  let jolietLevel = 0;
  let bootCatalogBlock: number | null = null;
  let terminated = false;
  for (let i = 0; i < MAX_DESCRIPTORS; i++) {
    const sector = FIRST_DESCRIPTOR_SECTOR + i;
    if ((sector + 1) * SECTOR_SIZE > source.size) break;
    const buf = await source.read(sector * SECTOR_SIZE, SECTOR_SIZE);
    const header = decodeHeader(buf);
    const where = `${name}: volume descriptor at sector ${sector}`;
    if (!header) throw new CorruptImageError(`${where}: no CD001 identifier`);
    if (header.type === VD_TERMINATOR) {
      terminated = true;
      break;
    }
    if (header.type === VD_PRIMARY && !primary) primary = decodePrimaryVolumeDescriptor(buf, where);
    if (header.type === VD_SUPPLEMENTARY && !joliet && isJolietEscape(buf.subarray(88, 120))) {
      joliet = decodePrimaryVolumeDescriptor(buf, where);
      jolietLevel = "@CE".indexOf(buf.toString("latin1", 90, 91)) + 1;
    }
    if (header.type === VD_BOOT_RECORD && bootCatalogBlock === null) bootCatalogBlock = decodeBootRecord(buf) ?? null;
  }
  if (!primary) throw new CorruptImageError(`${name}: no primary volume descriptor`);
  if (!terminated) throw new CorruptImageError(`${name}: no volume descriptor set terminator in the first ${MAX_DESCRIPTORS} sectors`);

  const { suspSkip, rockRidge } = await detectRockRidge(source, primary);
  return { primary, joliet, jolietLevel, suspSkip, rockRidge, bootCatalogBlock };
}

/**
 * The El Torito boot catalogue of a volume that has one: its sector, as
 * libisofs reads it (the catalogue's length is recorded nowhere, what follows
 * the sector is other data, and the sector holds some 60 boot entries).
 */
export async function readBootCatalog(source: BlockSource, volume: IsoVolume): Promise<BootCatalog | null> {
  const block = volume.bootCatalogBlock;
  if (block === null) return null;
  const where = `${source.name}: El Torito boot catalogue at block ${block}`;
  const start = block * SECTOR_SIZE;
  if (start + SECTOR_SIZE > source.size) {
    throw new CorruptImageError(`${where}: lies past the end of the image (${Math.floor(source.size / SECTOR_SIZE)} blocks)`);
  }
  return decodeBootCatalog(await source.read(start, SECTOR_SIZE), where);
}

/**
 * SUSP is in use when the first record of the root directory (its ".")
 * starts with SP; Rock Ridge when that record also names it in an ER entry,
 * or carries Rock Ridge entries (old writers omit ER).
 */
async function detectRockRidge(
  source: BlockSource,
  primary: PrimaryVolumeDescriptor,
): Promise<{ suspSkip: number | null; rockRidge: string | null }> {
  const where = `${source.name}: root directory`;
  const sector = await source.read(fileSection(primary.root).block * SECTOR_SIZE, SECTOR_SIZE);
  const self = decodeDirectoryRecord(sector, 0, where);
  const first = decodeSuspEntries(self.systemUse, where)[0];
  const skip = first ? decodeSp(first) : undefined;
  if (skip === undefined) return { suspSkip: null, rockRidge: null };
  const entries: SuspEntry[] = await readSuspArea(source, self.systemUse, 0, where);
  let rockRidge: string | null = null;
  for (const e of entries) {
    if (e.signature === "ER") {
      const er = decodeEr(e, `${where}: ER entry`);
      if (ROCK_RIDGE_IDS.includes(er.id)) rockRidge = er.id;
    }
  }
  if (!rockRidge && entries.some((e) => isRockRidgeSignature(e.signature))) rockRidge = "unknown";
  return { suspSkip: skip, rockRidge };
}
