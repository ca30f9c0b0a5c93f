/**
 * What `platter info` reports about an image: its container layers and
 * sizes (what `qemu-img info` gives), the partition table, and one section
 * per thing found in it. Each section is a probe that fills in its part.
 */
import { promises as fsp } from "node:fs";
import { dirname, isAbsolute, resolve } from "node:path";
import type { ContainerName } from "../container/format.js";
import { ioError } from "../errors.js";
import { openImage, type OpenedImage } from "../image/open-image.js";
import { readDiskTable } from "../image/disk-table.js";
import { probeOrWarn } from "../image/probe.js";
import type { BlockSource } from "../io/block-source.js";
import type { PartitionScheme } from "../partition/types.js";
import { iso9660Info, type Iso9660Info } from "./iso9660-info.js";

export interface LayerInfo {
  format: ContainerName;
  /** Bytes this layer decodes to. */
  virtualSize: number;
  /** Bytes it is stored in: the file's size for the outermost layer, else what the layer above decodes to. */
  storedSize: number;
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
  /**
   * The backing files behind a virtual disk, nearest first, each with its
   * own layers (as `qemu-img info --backing-chain` lists them); empty when none.
   */
  backingChain: BackingInfo[];
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

export interface BackingInfo {
  /** The path as the image names it, and as resolved from the folder of the image naming it. */
  name: string;
  path: string;
  format: ContainerName | "raw";
  virtualSize: number;
  fileSize: number;
  layers: LayerInfo[];
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
      layers: await describeLayers(image),
      backingChain: [],
      sectorSize: source.sectorSize,
      partitionTable: "none",
      partitions: 0,
      filesystem: null,
      label: null,
      uuid: null,
      warnings,
    };
    info.backingChain = await backingChain(path, info.layers, warnings);
    for (const probe of probes) await probe(source, info);
    return info;
  } finally {
    await image.close();
  }
}

async function describeLayers(image: OpenedImage): Promise<LayerInfo[]> {
  const measured = await Promise.all(image.layers.map((l) => l.measure?.() ?? {}));
  return image.layers.map((l, i) => ({
    ...l.describe(),
    ...measured[i],
    format: l.format,
    virtualSize: l.size,
    storedSize: i === 0 ? image.file.size : image.layers[i - 1].size,
    seekable: l.seekable,
  }));
}

/** Deeper than any real chain: openImage refuses it too. */
const MAX_CHAIN = 32;

/** Each backing file in turn, opened alone (--no-backing) for its own details; a loop ends the list with a warning. */
async function backingChain(path: string, layers: LayerInfo[], warnings: string[]): Promise<BackingInfo[]> {
  const chain: BackingInfo[] = [];
  const seen = new Set([await fsp.realpath(path).catch(() => resolve(path))]);
  let from = path;
  let name = backingFileOf(layers);
  while (name !== undefined && chain.length < MAX_CHAIN) {
    const target = isAbsolute(name) ? name : resolve(dirname(from), name);
    const real = await fsp.realpath(target).catch(() => target);
    if (seen.has(real)) {
      warnings.push(`${from}: its backing file ${name} comes back to an image already in the chain`);
      break;
    }
    seen.add(real);
    const image = await openImage(target, { noBacking: true, indexCache: false });
    try {
      const own = await describeLayers(image);
      chain.push({ name, path: target, format: image.layers[0]?.format ?? "raw", virtualSize: image.source.size, fileSize: image.file.size, layers: own });
      name = backingFileOf(own);
      from = target;
    } finally {
      await image.close();
    }
  }
  return chain;
}

function backingFileOf(layers: LayerInfo[]): string | undefined {
  const named = layers.find((l) => typeof l.backingFile === "string");
  return named?.backingFile as string | undefined;
}
