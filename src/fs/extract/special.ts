/**
 * FIFOs and device nodes. Node has no mknod(2), so mknod(1) makes the node,
 * under a temporary ASCII name (a name from the image may not be UTF-8, and
 * a child's arguments are strings) in the folder it belongs in, handed to the
 * child as a descriptor; link(2) then gives it its real name, and fails with
 * EEXIST as every other creation does when the name is taken.
 */
import { spawn } from "node:child_process";
import { constants, promises as fsp } from "node:fs";
import type { FsStat } from "../types.js";
import { childPath } from "./disk-path.js";

/** Why a special file cannot be made; undefined when it can be tried. */
export function cannotMake(stat: FsStat): string | undefined {
  if (stat.type === "socket") return "a socket is made by the program that listens on it";
  if ((stat.type === "char" || stat.type === "block") && !stat.rdev) return "the image does not give its device number";
  return undefined;
}

/** What `mknod` is told to make. */
function mknodType(stat: FsStat): string[] {
  if (stat.type === "fifo") return ["p"];
  const [major, minor] = stat.rdev as [number, number];
  return [stat.type === "char" ? "c" : "b", String(major), String(minor)];
}

/** Thrown when mknod(1) fails or is missing; the message says why, for the warning. */
export class SpecialFileError extends Error {}

let serial = 0;

/** Run mknod(1) to make the node `name` in the folder open as `folderFd`. */
function runMknod(folderFd: number, name: string, stat: FsStat): Promise<void> {
  const mode = (stat.mode & 0o7777).toString(8);
  return new Promise((resolve, reject) => {
    const child = spawn("mknod", ["-m", mode, `/proc/self/fd/3/${name}`, ...mknodType(stat)], {
      stdio: ["ignore", "ignore", "pipe", folderFd],
    });
    let stderr = "";
    child.stderr?.on("data", (d: Buffer) => (stderr += d.toString()));
    child.on("error", (err: NodeJS.ErrnoException) =>
      reject(new SpecialFileError(err.code === "ENOENT" ? "no mknod command (coreutils) to make it" : err.message)),
    );
    child.on("close", (code) => {
      if (code === 0) resolve();
      // "mknod: '/proc/self/fd/3/...': Operation not permitted": the reason is what follows the path.
      else reject(new SpecialFileError(`mknod failed: ${stderr.trim().split(": ").pop() || `exit status ${code}`}`));
    });
  });
}

/**
 * Make the FIFO or device `stat` describes in `folder` under a temporary
 * name, with its mode; the caller links it to its real name and removes this one.
 */
export async function makeNodeAside(folder: Buffer, stat: FsStat): Promise<Buffer> {
  const name = `.platter-mknod-${process.pid}-${serial++}`;
  const handle = await fsp.open(folder, constants.O_RDONLY | constants.O_DIRECTORY);
  try {
    await runMknod(handle.fd, name, stat);
  } finally {
    await handle.close();
  }
  return childPath(folder, name);
}
