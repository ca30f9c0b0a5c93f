/**
 * What `platter info` reports about an image: its format and sizes, then
 * one section per thing found in it, each from its own probe (today: the
 * filesystem at the start of the image, and an ISO 9660's ids and boot
 * entries).
 */
import { promises as fsp } from "node:fs";
import type { BlockSource } from "../io/block-source.js";
import { ioError } from "../errors.js";
import { openSource } from "../io/file-source.js";
import { probeFilesystem } from "../fs/probe.js";
import { iso9660Info, type Iso9660Info } from "./iso9660-info.js";

export interface ImageInfo {
  image: string;
  /** Always "raw": platter reads no compressed or virtual-disk image. */
  format: "raw";
  /** Bytes of the disk the image holds. */
  virtualSize: number;
  /** Bytes of the file (a block device's size). */
  fileSize: number;
  /** Bytes the file takes on disk (less than fileSize when sparse); null for devices. */
  allocatedSize: number | null;
  sectorSize: number;
  /** blkid's name of the filesystem at the start of the image (not inside partitions), if platter knows it. */
  filesystem: string | null;
  /** Its label and UUID as blkid shows them. */
  label: string | null;
  uuid: string | null;
  iso9660?: Iso9660Info;
}

/** A probe looks at the image and fills in its part of the report, or leaves it alone. */
export type InfoProbe = (source: BlockSource, info: ImageInfo) => Promise<void>;

const probes: InfoProbe[] = [
  async (source, info) => {
    const found = await probeFilesystem(source);
    if (!found) return;
    info.filesystem = found.filesystem;
    info.label = found.label;
    info.uuid = found.uuid;
  },
  async (source, info) => {
    if (info.filesystem !== "iso9660") return;
    const iso = await iso9660Info(source);
    if (iso) info.iso9660 = iso;
  },
];

export async function imageInfo(path: string): Promise<ImageInfo> {
  let stats;
  try {
    stats = await fsp.stat(path);
  } catch (err) {
    throw ioError(err, path);
  }
  const source = await openSource(path);
  try {
    const info: ImageInfo = {
      image: path,
      format: "raw",
      virtualSize: source.size,
      fileSize: stats.isFile() ? stats.size : source.size,
      allocatedSize: stats.isFile() ? stats.blocks * 512 : null,
      sectorSize: source.sectorSize,
      filesystem: null,
      label: null,
      uuid: null,
    };
    for (const probe of probes) await probe(source, info);
    return info;
  } finally {
    await source.close();
  }
}
