/**
 * Pick the reader for whatever filesystem a source holds, by its magic
 * numbers (never by a file name), and open it.
 */
import { UnsupportedError } from "../errors.js";
import type { BlockSource } from "../io/block-source.js";
import { openExfat } from "./exfat/index.js";
import { openExt } from "./ext/index.js";
import { openFat } from "./fat/index.js";
import { openSquashfs } from "./squashfs/index.js";
import type { FileSystem, FsNode } from "./types.js";

export type FilesystemKind = "ext" | "vfat" | "exfat" | "squashfs";

async function head(source: BlockSource, length: number): Promise<Buffer> {
  return source.read(0, Math.min(length, source.size));
}

/** Which reader fits, or undefined. */
export async function detectFilesystem(source: BlockSource): Promise<FilesystemKind | undefined> {
  const b = await head(source, 2048);
  if (b.length >= 4 && b.toString("latin1", 0, 4) === "hsqs") return "squashfs";
  if (b.length >= 1082 && b.readUInt16LE(1080) === 0xef53) return "ext";
  if (b.length >= 512 && b.toString("latin1", 3, 11) === "EXFAT   ") return "exfat";
  if (b.length >= 512 && looksLikeFat(b)) return "vfat";
  return undefined;
}

/** A boot sector with a jump instruction, a sane sector size and cluster size, and a FAT type string or signature. */
function looksLikeFat(b: Buffer): boolean {
  const jump = b[0] === 0xeb || b[0] === 0xe9;
  const bps = b.readUInt16LE(11);
  const spc = b[13];
  const sane = [512, 1024, 2048, 4096].includes(bps) && spc > 0 && (spc & (spc - 1)) === 0 && b[16] > 0;
  const named = b.toString("latin1", 54, 59) === "FAT12" || b.toString("latin1", 54, 59) === "FAT16" || b.toString("latin1", 82, 87) === "FAT32";
  return jump && sane && (named || b.readUInt16LE(510) === 0xaa55);
}

/** For messages. */
export const READABLE = "ext2/3/4, FAT12/16/32, exFAT and squashfs";

export async function openFilesystem(source: BlockSource): Promise<FileSystem<FsNode>> {
  switch (await detectFilesystem(source)) {
    case "ext":
      return openExt(source);
    case "vfat":
      return openFat(source);
    case "exfat":
      return openExfat(source);
    case "squashfs":
      return openSquashfs(source);
    default:
      throw new UnsupportedError(`${source.name}: no filesystem platter can read (it reads ${READABLE})`);
  }
}
