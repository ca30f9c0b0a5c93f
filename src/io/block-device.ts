/**
 * A block device's exact size and logical sector size: the kernel's ioctls
 * (BLKGETSIZE64, BLKSSZGET) through the FFI, else sysfs, which says the same
 * without it: /sys/dev/block/MAJ:MIN/size in 512-byte units whatever the
 * sector size, and queue/logical_block_size on the disk (a partition has no
 * queue of its own).
 */
import { promises as fsp } from "node:fs";
import { join } from "node:path";
import { blockDeviceSectorSize, blockDeviceSize } from "./syscalls.js";

export interface BlockDeviceGeometry {
  size: number;
  logicalSectorSize: number;
}

/** "MAJ:MIN" of a device number (glibc's gnu_dev_major / gnu_dev_minor). */
export function majorMinor(dev: bigint): string {
  const major = ((dev >> 8n) & 0xfffn) | ((dev >> 32n) & ~0xfffn);
  const minor = (dev & 0xffn) | ((dev >> 12n) & ~0xffn);
  return `${major}:${minor}`;
}

/** Geometry of the open block device `fd`, whose stat gave `rdev`; undefined when neither the kernel nor sysfs tells. */
export async function blockDeviceGeometry(fd: number, rdev: number | bigint): Promise<BlockDeviceGeometry | undefined> {
  const size = blockDeviceSize(fd);
  const logicalSectorSize = blockDeviceSectorSize(fd);
  if (size !== undefined && logicalSectorSize !== undefined) return { size, logicalSectorSize };
  const fromSysfs = await sysfsGeometry(majorMinor(BigInt(rdev)));
  if (!fromSysfs) return undefined;
  return { size: size ?? fromSysfs.size, logicalSectorSize: logicalSectorSize ?? fromSysfs.logicalSectorSize };
}

async function sysfsGeometry(majMin: string): Promise<BlockDeviceGeometry | undefined> {
  let dir: string;
  try {
    dir = await fsp.realpath(`/sys/dev/block/${majMin}`);
  } catch {
    return undefined;
  }
  const sectors = await readNumber(join(dir, "size"));
  if (sectors === undefined) return undefined;
  const logical = (await readNumber(join(dir, "queue", "logical_block_size"))) ?? (await readNumber(join(dir, "..", "queue", "logical_block_size")));
  return { size: sectors * 512, logicalSectorSize: logical ?? 512 };
}

async function readNumber(path: string): Promise<number | undefined> {
  try {
    const n = Number((await fsp.readFile(path, "utf8")).trim());
    return Number.isSafeInteger(n) && n >= 0 ? n : undefined;
  } catch {
    return undefined;
  }
}
