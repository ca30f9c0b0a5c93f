/**
 * Open the reader for whatever filesystem a source holds. Which one it is,
 * probeFilesystem says (blkid's rules, by magic numbers, never by a name).
 */
import { UnsupportedError } from "../errors.js";
import type { BlockSource } from "../io/block-source.js";
import { probeFilesystem, type ProbeResult } from "./probe.js";
import { guarded, guardFileSystem } from "./guard.js";
import type { FileSystem, FsNode } from "./types.js";

type Opener = (source: BlockSource) => Promise<FileSystem<FsNode>>;

/**
 * blkid's filesystem name -> the reader for it, loaded when a filesystem of
 * that kind is opened: `ls` of an ISO never parses the ext reader (start-up time).
 */
const READERS: Record<string, Opener> = {
  ext2: async (source) => (await import("./ext/index.js")).openExt(source),
  ext3: async (source) => (await import("./ext/index.js")).openExt(source),
  ext4: async (source) => (await import("./ext/index.js")).openExt(source),
  vfat: async (source) => (await import("./fat/index.js")).openFat(source),
  exfat: async (source) => (await import("./exfat/index.js")).openExfat(source),
  squashfs: async (source) => (await import("./squashfs/index.js")).openSquashfs(source),
  iso9660: async (source) => (await import("./iso9660/index.js")).openIso9660(source),
};

/** For messages: what platter reads. */
export const READABLE = "ext2/3/4, FAT12/16/32, exFAT, squashfs and ISO 9660";

/** Can platter list and read files of what the probe found? */
export function canRead(probe: ProbeResult | null): boolean {
  return probe !== null && Object.hasOwn(READERS, probe.filesystem);
}

/** Open the filesystem on `source`; pass the probe result when the caller has it already. */
export async function openFilesystem(source: BlockSource, probe?: ProbeResult | null): Promise<FileSystem<FsNode>> {
  const found = probe === undefined ? await probeFilesystem(source) : probe;
  if (found === null) throw new UnsupportedError(`${source.name}: no filesystem platter can read (it reads ${READABLE})`);
  const open = Object.hasOwn(READERS, found.filesystem) ? READERS[found.filesystem] : undefined;
  if (!open) throw new UnsupportedError(`${source.name} holds ${found.filesystem}, which platter cannot read files from (it reads ${READABLE})`);
  const where = source.name;
  return guardFileSystem(await guarded(`${where}: ${found.filesystem}`, () => open(source)), where);
}
