/**
 * Mount a partition of an image by its number: the loop device gets the
 * partition's offset and size limit, the mount gets the probed type, and
 * every failure on the way detaches the loop device again. umount finds the
 * loop device behind a mount point and detaches it too.
 */
import { realpathSync, statSync } from "node:fs";
import { DeviceError, UnsupportedError, UsageError } from "../errors.js";
import type { ProbeResult } from "../fs/probe.js";
import type { PartitionChoice } from "../image/partition-choice.js";
import { runTool } from "./exec.js";
import { attachLoop, detachLoop, loopBackingFile } from "./loop.js";
import { kernelFilesystems, listMounts } from "./mounts.js";
import { shellQuote } from "../util/shell.js";

export interface MountPlan {
  image: string;
  /** null: the whole image. */
  partition: number | null;
  offset: number;
  sizeLimit: number;
  /** The -t argument: blkid's name, except where the kernel's driver is called otherwise. */
  fstype: string;
  readOnly: boolean;
  probe: ProbeResult;
}

/** blkid's names are the kernel's, except NTFS (the ntfs3 driver, or the ntfs-3g FUSE helper). */
const KERNEL_NAME: Record<string, string> = { ntfs: "ntfs3" };

export function planMount(image: string, choice: PartitionChoice, options: { readOnly: boolean }): MountPlan {
  const where = choice.partition ? `partition ${choice.partition.number} of ${image}` : image;
  const probe = choice.probe;
  if (!probe) throw new UnsupportedError(`${where}: no filesystem platter recognises, so there is nothing to mount`);
  if (probe.filesystem === "swap") throw new UsageError(`${where} is swap space, not a filesystem: there is nothing to mount`);
  if (probe.filesystem === "crypto_LUKS") {
    throw new UsageError(`${where} is LUKS-encrypted: open it with 'cryptsetup open', then mount /dev/mapper/NAME`);
  }
  return {
    image,
    partition: choice.partition?.number ?? null,
    offset: choice.partition?.offset ?? 0,
    sizeLimit: choice.partition?.length ?? 0,
    fstype: probe.filesystem,
    readOnly: options.readOnly,
    probe,
  };
}

/** The plain command a user could type instead: `mount -o loop,ro,offset=…,sizelimit=… -t TYPE IMAGE MOUNTPOINT`. */
export function mountCommandLine(plan: MountPlan, mountPoint: string): string {
  const options = ["loop", plan.readOnly ? "ro" : "rw"];
  if (plan.partition !== null) options.push(`offset=${plan.offset}`, `sizelimit=${plan.sizeLimit}`);
  return ["mount", "-o", options.join(","), "-t", plan.fstype, shellQuote(plan.image), shellQuote(mountPoint)].join(" ");
}

function readWithoutMounting(plan: MountPlan): string {
  const part = plan.partition !== null ? ` --part ${plan.partition}` : "";
  const image = shellQuote(plan.image);
  return `read the files without mounting instead: platter ls ${image}${part}, or platter extract ${image} -o DIR${part}`;
}

/** The -t type that mounts `plan` here (loading the kernel module if need be), or null when nothing can. */
export async function findDriver(plan: MountPlan): Promise<string | null> {
  const wanted = KERNEL_NAME[plan.fstype] ?? plan.fstype;
  if (kernelFilesystems().has(wanted)) return wanted;
  try {
    await runTool("modprobe", [wanted]);
  } catch {
    // No module (or no modprobe): the check below says so.
  }
  if (kernelFilesystems().has(wanted)) return wanted;
  if (plan.fstype === "ntfs") {
    try {
      await runTool("sh", ["-c", "command -v mount.ntfs-3g"]);
      return "ntfs-3g";
    } catch {
      // nothing mounts it
    }
  }
  return null;
}

/** The -t type to use, after making sure the kernel (or a FUSE helper) can mount it. */
async function driverFor(plan: MountPlan): Promise<string> {
  const driver = await findDriver(plan);
  if (driver) return driver;
  const wanted = KERNEL_NAME[plan.fstype] ?? plan.fstype;
  throw new UnsupportedError(
    `this kernel has no ${wanted} driver (not in /proc/filesystems, and 'modprobe ${wanted}' did not load one); ${readWithoutMounting(plan)}`,
  );
}

function checkMountPoint(mountPoint: string): void {
  let isDir = false;
  try {
    isDir = statSync(mountPoint).isDirectory();
  } catch {
    throw new UsageError(`mount point ${mountPoint} does not exist (create it with mkdir first)`);
  }
  if (!isDir) throw new UsageError(`mount point ${mountPoint} is not a directory`);
}

export interface MountResult {
  device: string;
  fstype: string;
}

/** Attach a loop device and mount it; on any failure the loop device is detached again. */
export async function mountImage(plan: MountPlan, mountPoint: string): Promise<MountResult> {
  if (typeof process.getuid === "function" && process.getuid() !== 0) {
    throw new DeviceError(`mounting needs root: run it with sudo, or ${readWithoutMounting(plan)}`, "EPERM");
  }
  checkMountPoint(mountPoint);
  const fstype = await driverFor(plan);
  const device = await attachLoop(plan.image, { offset: plan.offset, sizeLimit: plan.sizeLimit, readOnly: plan.readOnly });
  try {
    await runTool("mount", ["-t", fstype, "-o", plan.readOnly ? "ro" : "rw", device, mountPoint]);
  } catch (err) {
    await detachLoop(device).catch(() => undefined);
    throw err;
  }
  return { device, fstype };
}

export interface UnmountResult {
  source: string;
  /** The loop device that was detached, if the mount was on one. */
  detached: string | null;
}

/** Unmount `mountPoint` and detach the loop device it was on. */
export async function unmountImage(mountPoint: string): Promise<UnmountResult> {
  let resolved: string;
  try {
    resolved = realpathSync(mountPoint);
  } catch {
    throw new UsageError(`${mountPoint} does not exist`);
  }
  const entry = listMounts()
    .reverse()
    .find((m) => m.mountPoint === resolved);
  if (!entry) throw new UsageError(`${mountPoint} is not a mount point`);
  await runTool("umount", [resolved]);
  const loop = loopBackingFile(entry.source) !== null ? entry.source : null;
  if (loop) {
    // The kernel may have auto-cleared it already (mount -o loop does that); only detach what is still attached.
    await detachLoop(loop).catch((err: unknown) => {
      if (loopBackingFile(loop) !== null) throw err;
    });
  }
  return { source: entry.source, detached: loop };
}
