/**
 * What `platter info` reports about an image: its container layers and
 * sizes (what `qemu-img info` gives), the partition table, and one section
 * per thing found in it. Each section is a probe that fills in its part.
 */
import { promises as fsp } from "node:fs";
import type { ContainerName } from "../container/format.js";
import { ioError } from "../errors.js";
import { openImage } from "../image/open-image.js";
import { readDiskTable } from "../image/disk-table.js";
import { probeOrWarn } from "../image/probe.js";
import type { BlockSource } from "../io/block-source.js";
import type { PartitionScheme } from "../partition/types.js";
import { iso9660Info, type Iso9660Info } from "./iso9660-info.js";

export interface LayerInfo {
  format: ContainerName;
  /** Bytes this layer decodes to. */
  virtualSize: number;
  seekable: boolean;
  /** The format's own details: cluster size, compression, backing file... */
  [detail: string]: unknown;
}

export interface ImageInfo {
  image: string;
  /** The outermost container format ("zstd" for a zstd-compressed qcow2), or "raw". */
  format: ContainerName | "raw";
  /** Bytes of the disk the image holds, once every layer is decoded. */
  virtualSize: number;
  /** Bytes of the file (a block device's size). */
  fileSize: number;
  /** Bytes the file takes on disk (less than fileSize when sparse); null for devices. */
  allocatedSize: number | null;
  /** Random access to the decoded disk is cheap (raw, or every layer has an index). */
  seekable: boolean;
  /** The stack openImage built, outermost first. */
  layers: LayerInfo[];
  sectorSize: number;
  /** The partition table of the decoded disk: "mbr", "gpt" or "none", and how many partitions it lists. */
  partitionTable: PartitionScheme;
  partitions: number;
  /** blkid's name of the filesystem at the start of the image (not inside partitions), if platter knows it. */
  filesystem: string | null;
  /** Its label and UUID as blkid shows them. */
  label: string | null;
  uuid: string | null;
  iso9660?: Iso9660Info;
  warnings: string[];
}

/** A probe looks at the decoded image and fills in its part of the report, or leaves it alone. */
export type InfoProbe = (source: BlockSource, info: ImageInfo) => Promise<void>;

const probes: InfoProbe[] = [
  async (source, info) => {
    const table = await readDiskTable(source);
    info.partitionTable = table.scheme;
    info.partitions = table.partitions.length;
    info.warnings.push(...table.warnings);
  },
  async (source, info) => {
    const found = await probeOrWarn(source, info.warnings);
    if (!found) return;
    info.filesystem = found.filesystem;
    info.label = found.label;
    info.uuid = found.uuid;
  },
  async (source, info) => {
    if (info.filesystem !== "iso9660") return;
    const iso = await iso9660Info(source);
    if (!iso) return;
    info.iso9660 = iso;
    info.warnings.push(...iso.warnings);
  },
];

export async function imageInfo(path: string, options: { noBacking?: boolean } = {}): Promise<ImageInfo> {
  const warnings: string[] = [];
  const image = await openImage(path, { purpose: "describing an image", noBacking: options.noBacking, onWarning: (m) => warnings.push(m) });
  try {
    // A split image's size is its pieces' together.
    const stats = [];
    for (const file of image.files) {
      try {
        stats.push(await fsp.stat(file));
      } catch (err) {
        throw ioError(err, file);
      }
    }
    const isFile = stats.every((st) => st.isFile());
    const source = image.source;
    const info: ImageInfo = {
      image: path,
      format: image.layers[0]?.format ?? "raw",
      virtualSize: source.size,
      fileSize: isFile ? stats.reduce((sum, st) => sum + st.size, 0) : image.file.size,
      allocatedSize: isFile ? stats.reduce((sum, st) => sum + st.blocks * 512, 0) : null,
      seekable: image.layers.every((l) => l.seekable),
      layers: image.layers.map((l) => ({ ...l.describe(), format: l.format, virtualSize: l.size, seekable: l.seekable })),
      sectorSize: source.sectorSize,
      partitionTable: "none",
      partitions: 0,
      filesystem: null,
      label: null,
      uuid: null,
      warnings,
    };
    for (const probe of probes) await probe(source, info);
    return info;
  } finally {
    await image.close();
  }
}
