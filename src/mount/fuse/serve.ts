/**
 * The FUSE server: opens the image through every layer (openImage), mounts
 * the chosen filesystem's files (or, with --raw, the disk and its
 * partitions) read-only on the mount point, and serves until the mount
 * goes away — `platter umount`, fusermount -u, or SIGTERM/SIGINT/SIGHUP,
 * on which it unmounts itself first, so it never leaves a dead mount.
 */
import { accessSync, constants, statSync } from "node:fs";
import { DeviceError, errnoCode, ioError, UsageError } from "../../errors.js";
import type { BlockSource } from "../../io/block-source.js";
import { readDiskTable } from "../../image/disk-table.js";
import { openImageFilesystem } from "../../image/open-filesystem.js";
import { openImage } from "../../image/open-image.js";
import { partitionView } from "../../image/partition-choice.js";
import { listMounts } from "../mounts.js";
import { type FuseMountOptions, loadFuseBinding } from "./binding.js";
import { FilesystemTree } from "./fs-tree.js";
import { fuseOps, type ServedTree } from "./ops.js";
import { RawTree } from "./raw-tree.js";
import { canonicalMountPoint, FSNAME_PREFIX, unmountFuse } from "./unmount.js";

export interface ServeOptions {
  image: string;
  mountPoint: string;
  /** --part N (not with raw). */
  part?: number;
  /** --raw: the disk and its partitions as files. */
  raw: boolean;
  onWarning(message: string): void;
  /** The mount is live: `message` says what is served where. */
  onReady(message: string): void;
}

/** How often the server looks whether its mount is still there (after fusermount -u, libfuse's loop ends silently). */
const MOUNT_CHECK_MS = 500;
/** The kernel may keep names and attributes this long: nothing in a read-only image changes. */
const CACHE_SECONDS = 60;

function isInside(path: string, dir: string): boolean {
  return path === dir || path.startsWith(dir.endsWith("/") ? dir : `${dir}/`);
}

/** The mount point, resolved; refused when it cannot take a mount, or when serving it would read the mount itself. */
function checkMountPoint(image: string, mountPoint: string): string {
  const path = canonicalMountPoint(mountPoint);
  let isDir = false;
  try {
    isDir = statSync(path).isDirectory();
  } catch (err) {
    if (errnoCode(err) === "ENOENT") throw new UsageError(`mount point ${mountPoint} does not exist (create it with mkdir first)`);
    throw ioError(err, `mount point ${mountPoint}`);
  }
  if (!isDir) throw new UsageError(`mount point ${mountPoint} is not a directory`);
  if (listMounts().some((m) => m.mountPoint === path)) {
    throw new UsageError(`${mountPoint} is already a mount point (platter umount ${mountPoint} first)`);
  }
  // The server reading its own mount would wait on itself forever (a process stuck in D state).
  if (isInside(canonicalMountPoint(image), path)) {
    throw new UsageError(`${image} is inside the mount point ${mountPoint}: the mount would hide it from platter itself; mount it elsewhere`);
  }
  return path;
}

interface Served {
  tree: ServedTree<unknown>;
  what: string;
  close(): Promise<void>;
}

async function openFiles(options: ServeOptions): Promise<Served> {
  const opened = await openImageFilesystem(options.image, { part: options.part, onWarning: options.onWarning });
  const where = opened.choice.partition ? `partition ${opened.choice.partition.number} of ${options.image}` : options.image;
  const label = opened.fs.label ? ` "${opened.fs.label}"` : "";
  return {
    tree: new FilesystemTree(opened.fs, opened.source.size) as ServedTree<unknown>,
    what: `${where} (${opened.fs.type}${label})`,
    close: () => opened.close(),
  };
}

async function openRaw(options: ServeOptions): Promise<Served> {
  if (options.part !== undefined) throw new UsageError("--raw serves the whole disk and every partition as files; leave out --part");
  const image = await openImage(options.image, { purpose: "mounting", onWarning: options.onWarning });
  try {
    const table = await readDiskTable(image.source);
    for (const message of table.warnings) options.onWarning(message);
    const files: Array<[string, BlockSource]> = [["disk", image.source]];
    for (const partition of table.partitions) {
      if (partition.container) continue;
      const view = partitionView(image.source, table, partition);
      if (view.warning) options.onWarning(view.warning);
      files.push([`p${partition.number}`, view.source]);
    }
    const mtime = statSync(options.image).mtimeMs / 1000;
    const names = files.map(([name]) => name).join(", ");
    return { tree: new RawTree(files, mtime) as ServedTree<unknown>, what: `${options.image} as raw files (${names})`, close: () => image.close() };
  } catch (err) {
    await image.close();
    throw err;
  }
}

/** libfuse only says "fuse failed"; say why before trying. */
function checkFuseDevice(): void {
  try {
    accessSync("/dev/fuse", constants.R_OK | constants.W_OK);
  } catch (err) {
    const why = errnoCode(err) === "ENOENT" ? "does not exist (modprobe fuse; in a container, pass --device /dev/fuse)" : "is not usable by this user";
    throw new DeviceError(
      `FUSE is not available here: /dev/fuse ${why}; as root, platter mount uses a loop device instead; or read the files without mounting: platter ls, platter extract`,
      errnoCode(err),
    );
  }
}

/** Mount and serve; resolves once the mount is gone and everything is closed. */
export async function serveFuse(options: ServeOptions): Promise<void> {
  const mountPoint = checkMountPoint(options.image, options.mountPoint);
  checkFuseDevice();
  const Fuse = await loadFuseBinding();
  const served = options.raw ? await openRaw(options) : await openFiles(options);
  const fsname = `${FSNAME_PREFIX}${process.pid}`;
  const mountOptions: FuseMountOptions = {
    fsname,
    // fuse-native has no option for use_ino or ro; its -o list is comma-joined, so they ride along here.
    // use_ino: the readers' inode numbers reach stat (hard links); ro: the kernel refuses writes itself.
    subtype: "platter,use_ino,ro",
    // A slow layer (xz, bzip2) may take seconds for one block; a timeout would answer for it too early.
    timeout: false,
    kernelCache: true,
    attrTimeout: CACHE_SECONDS,
    entryTimeout: CACHE_SECONDS,
  };
  const ops = fuseOps(served.tree, (op, path, err) => options.onWarning(`${op} ${path}: ${(err as Error).message ?? err}`));
  const fuse = new Fuse(mountPoint, ops, mountOptions);
  try {
    await new Promise<void>((resolve, reject) =>
      fuse.mount((err) =>
        err
          ? reject(new DeviceError(`cannot mount ${options.mountPoint} through FUSE: libfuse refused (${err.message}; its reason is above)`))
          : resolve(),
      ),
    );
  } catch (err) {
    await served.close();
    throw err;
  }
  options.onReady(`serving ${served.what} read-only on ${options.mountPoint} through FUSE (pid ${process.pid}); unmount with: platter umount ${options.mountPoint}`);

  await new Promise<void>((resolve) => {
    const stillMounted = () => listMounts().some((m) => m.mountPoint === mountPoint && m.source === fsname);
    const timer = setInterval(() => {
      if (!stillMounted()) finish();
    }, MOUNT_CHECK_MS);
    const onSignal = () => {
      unmountFuse(mountPoint, { lazy: true }).then(finish, (err: unknown) => {
        options.onWarning(`could not unmount ${options.mountPoint}: ${(err as Error).message}`);
        finish();
      });
    };
    const signals: NodeJS.Signals[] = ["SIGTERM", "SIGINT", "SIGHUP"];
    for (const sig of signals) process.on(sig, onSignal);
    function finish() {
      clearInterval(timer);
      for (const sig of signals) process.off(sig, onSignal);
      resolve();
    }
  });
  await served.close();
}
