/**
 * Finding and ending a FUSE mount. Without root only the setuid helper may
 * unmount (fusermount3 from FUSE 3, or fusermount from FUSE 2); root may
 * use umount too. A mount whose server died answers every stat with
 * ENOTCONN, so its path is taken as given rather than resolved.
 */
import { realpathSync } from "node:fs";
import { resolve } from "node:path";
import { DeviceError } from "../../errors.js";
import { runTool } from "../exec.js";
import { listMounts, type MountEntry } from "../mounts.js";

/** What platter's FUSE server names its mounts in /proc/self/mountinfo: platter:PID. */
export const FSNAME_PREFIX = "platter:";

export function canonicalMountPoint(mountPoint: string): string {
  try {
    return realpathSync(mountPoint);
  } catch {
    return resolve(mountPoint);
  }
}

/** The FUSE mount on `mountPoint` (the topmost one), if that is what is mounted there. */
export function fuseMountAt(mountPoint: string): MountEntry | undefined {
  const path = canonicalMountPoint(mountPoint);
  const entry = listMounts()
    .reverse()
    .find((m) => m.mountPoint === path);
  return entry && (entry.fstype === "fuse" || entry.fstype.startsWith("fuse.")) ? entry : undefined;
}

/** The pid of the platter process serving `entry`, if platter serves it. */
export function serverPid(entry: MountEntry): number | null {
  if (!entry.source.startsWith(FSNAME_PREFIX)) return null;
  const pid = Number(entry.source.slice(FSNAME_PREFIX.length));
  return Number.isInteger(pid) && pid > 0 ? pid : null;
}

/**
 * Unmount the FUSE mount at `path`, which must be canonical already: the
 * server itself calls this (on SIGTERM), and resolving a path through its
 * own mount would wait on itself. `lazy` detaches the mount even while files
 * are open (the server is about to go, and must not leave a dead mount).
 */
export async function unmountFuse(path: string, options: { lazy: boolean }): Promise<void> {
  const attempts: Array<[string, string[]]> = [
    ["fusermount3", [options.lazy ? "-uz" : "-u", path]],
    ["fusermount", [options.lazy ? "-uz" : "-u", path]],
  ];
  if (process.getuid?.() === 0) attempts.push(["umount", options.lazy ? ["-l", path] : [path]]);
  let failure: unknown;
  for (const [tool, args] of attempts) {
    try {
      await runTool(tool, args);
      return;
    } catch (err) {
      // Try the next helper only when this one is not installed.
      if (err instanceof DeviceError && err.code === "ENOENT") continue;
      failure ??= err;
      break;
    }
  }
  throw failure ?? new DeviceError(`cannot unmount ${path}: neither fusermount3 nor fusermount is installed (apt-get install fuse3)`);
}

/** Wait (a bounded number of short naps) until process `pid` has exited; false if it is still there. */
export async function waitForExit(pid: number, naps = 200): Promise<boolean> {
  for (let i = 0; i < naps; i++) {
    try {
      process.kill(pid, 0);
    } catch {
      return true;
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  return false;
}
