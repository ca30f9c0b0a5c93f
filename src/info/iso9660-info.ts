/** The ISO 9660 part of `platter info`: volume ids, extensions, El Torito boot entries. */
import type { BlockSource } from "../io/block-source.js";
import { PlatterError } from "../errors.js";
import { SECTOR_SIZE } from "../fs/iso9660/constants.js";
import { emulationName, platformName, type BootCatalog } from "../fs/iso9660/el-torito.js";
import { looksLikeIso9660, readBootCatalog, readIsoVolume, volumeIds, type IsoVolumeIds } from "../fs/iso9660/volume.js";

export interface BootEntryInfo {
  platform: string;
  platformId: number;
  bootable: boolean;
  emulation: string;
  loadSegment: number;
  /** 512-byte sectors the firmware loads (0: all of it, for UEFI). */
  loadSectors: number;
  imageBlock: number;
  imageOffset: number;
}

export interface Iso9660Info extends IsoVolumeIds {
  /** Size of the volume in 2048-byte blocks. */
  volumeBlocks: number;
  joliet: { level: number; volumeId: string } | null;
  /** The Rock Ridge identifier (ER): "IEEE_1282", "RRIP_1991A"... */
  rockRidge: string | null;
  bootCatalog: { block: number; entries: BootEntryInfo[] } | null;
  warnings: string[];
}

export async function iso9660Info(source: BlockSource): Promise<Iso9660Info | null> {
  if (!(await looksLikeIso9660(source))) return null;
  const volume = await readIsoVolume(source);
  const warnings: string[] = [];
  let catalog: BootCatalog | null = null;
  try {
    catalog = await readBootCatalog(source, volume);
  } catch (err) {
    // A broken catalogue is worth a warning, not the rest of the report.
    if (!(err instanceof PlatterError)) throw err;
    warnings.push(err.message);
  }
  const entries: BootEntryInfo[] = (catalog?.entries ?? []).map((e) => ({
    platform: platformName(e.platform),
    platformId: e.platform,
    bootable: e.bootable,
    emulation: emulationName(e.mediaType),
    loadSegment: e.loadSegment,
    loadSectors: e.sectorCount,
    imageBlock: e.loadRba,
    imageOffset: e.loadRba * SECTOR_SIZE,
  }));
  return {
    ...volumeIds(volume.primary),
    volumeBlocks: volume.primary.volumeSpaceSize,
    joliet: volume.joliet ? { level: volume.jolietLevel, volumeId: volume.joliet.volumeId } : null,
    rockRidge: volume.rockRidge,
    bootCatalog: volume.bootCatalogBlock !== null && catalog ? { block: volume.bootCatalogBlock, entries } : null,
    warnings,
  };
}
