/**
 * Where everything goes, decided once sizes are known (pycdlib's
 * "reshuffle extents" pass): descriptors from block 16, the boot catalogue,
 * path tables, every ISO 9660 folder followed by its continuation blocks, the
 * Joliet folders, then file data. Folders come before all file data because
 * streaming readers (libarchive) read the image front to back.
 */
import { FIRST_DESCRIPTOR_SECTOR, SECTOR_SIZE } from "../constants.js";
import type { ImagePlan, IsoDir } from "./plan.js";
import {
  isoPathTableFolders,
  jolietPathTableFolders,
  measureIsoDirectory,
  measureJolietDirectory,
  renderPathTable,
  type DescriptorLayout,
} from "./records.js";

export interface PathTableLayout {
  size: number;
  l: number;
  m: number;
}

export interface ImageLayout extends DescriptorLayout {
  bootRecord: number | null;
  jolietDescriptor: number | null;
  terminator: number;
  bootCatalog: number | null;
  isoPathTable: PathTableLayout;
  jolietPathTable: PathTableLayout | null;
  /** First block after the file data. */
  dataEnd: number;
  /** Blocks after the data that the system area needs (a GPT's backup), included in volumeSpaceSize. */
  tailSectors: number;
}

const sectorsFor = (bytes: number) => Math.ceil(bytes / SECTOR_SIZE);

/**
 * The order of the ISO 9660 folder extents: the root, then everything inside
 * rr_moved, then the rest, each part in path table order. libarchive reads
 * folders in block order and joins a relocated folder to its CL placeholder
 * as it meets the placeholder; it can only do that for a folder relocated
 * inside another relocated one (deeper than 14 levels) while the outer one
 * is not yet joined, so every relocated subtree must come first.
 */
export function extentOrder(plan: ImagePlan): IsoDir[] {
  const relocated = new Set<IsoDir>();
  for (const dir of plan.isoDirs) {
    if (dir.node === null || relocated.has(dir.parent)) relocated.add(dir);
  }
  const [root, ...rest] = plan.isoDirs;
  return [root, ...rest.filter((d) => relocated.has(d)), ...rest.filter((d) => !relocated.has(d))];
}

export interface LayoutOptions {
  /** Round the image up to a multiple of this many blocks (hybrid images: 1 MiB), before the tail. */
  alignSectors?: number;
  tailSectors?: number;
}

/** Assign every block number in `plan` and return where the fixed structures are. */
export function layoutImage(plan: ImagePlan, options: LayoutOptions = {}): ImageLayout {
  let next = FIRST_DESCRIPTOR_SECTOR + 1;
  const bootRecord = plan.boot.length > 0 ? next++ : null;
  const jolietDescriptor = plan.jolietRoot ? next++ : null;
  const terminator = next++;
  let bootCatalog: number | null = null;
  if (plan.bootCatalog) {
    bootCatalog = next++;
    plan.bootCatalog.block = bootCatalog;
  }

  const pathTable = (size: number): PathTableLayout => {
    const l = next;
    next += sectorsFor(size);
    const m = next;
    next += sectorsFor(size);
    return { size, l, m };
  };
  const isoPathTable = pathTable(renderPathTable(isoPathTableFolders(plan.isoDirs), "L").length);
  const jolietPathTable = plan.jolietRoot ? pathTable(renderPathTable(jolietPathTableFolders(plan.jolietDirs), "L").length) : null;

  // Sizes first (no size depends on a block number), then blocks.
  for (const dir of plan.isoDirs) {
    const size = measureIsoDirectory(plan, dir);
    dir.sectors = size.sectors;
    dir.continuationSectors = size.continuationSectors;
  }
  for (const dir of plan.jolietDirs) dir.sectors = measureJolietDirectory(dir);
  for (const dir of extentOrder(plan)) {
    dir.block = next;
    next += dir.sectors + dir.continuationSectors;
  }
  for (const dir of plan.jolietDirs) {
    dir.block = next;
    next += dir.sectors;
  }
  for (const file of plan.files) {
    file.block = file.size > 0 ? next : 0;
    next += sectorsFor(file.size);
  }
  const dataEnd = next;
  const align = options.alignSectors ?? 1;
  const tailSectors = options.tailSectors ?? 0;
  const volumeSpaceSize = Math.ceil((dataEnd + tailSectors) / align) * align;
  return {
    volumeSpaceSize,
    bootRecord,
    jolietDescriptor,
    terminator,
    bootCatalog,
    isoPathTable,
    jolietPathTable,
    dataEnd,
    tailSectors: volumeSpaceSize - dataEnd,
  };
}
