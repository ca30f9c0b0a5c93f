/** DIR, the folder an extraction writes into: made if missing, and empty unless --force. */
import { promises as fsp } from "node:fs";
import { dirname } from "node:path";
import { errnoCode, ioError, UsageError } from "../../errors.js";
import { escapeName } from "../names.js";
import { folderPath } from "./disk-path.js";

export interface Destination {
  path: Buffer;
  /** It held entries before this run (--force): a name taken there may be a stale one, not ours. */
  heldEntries: boolean;
  /** It is setgid: what is made in it takes its group, so owners must always be set. */
  inheritsGroup: boolean;
}

/**
 * Make `path` and its missing ancestors, as `mkdir -p` does. Node's recursive
 * mkdir steps back to the parent on ENOENT and forward again when the parent
 * exists, so a parent that exists but cannot hold the child (/proc, a dangling
 * symlink) makes it loop forever. Here each folder is tried at most twice:
 * once, and once more after its parent was made or found, when ENOENT is final.
 */
async function makeFolders(path: string): Promise<void> {
  try {
    await fsp.mkdir(path);
    return;
  } catch (err) {
    const code = errnoCode(err);
    if (code === "EEXIST") return; // whether it is a folder is the caller's check
    const parent = dirname(path);
    if (code !== "ENOENT" || parent === path) throw ioError(err, `cannot create folder ${escapeName(path)}`);
  }
  await makeFolders(dirname(path));
  try {
    await fsp.mkdir(path);
  } catch (err) {
    if (errnoCode(err) !== "EEXIST") throw ioError(err, `cannot create folder ${escapeName(path)}`);
  }
}

async function isEmptyDir(path: string): Promise<boolean> {
  const dir = await fsp.opendir(path);
  try {
    return (await dir.read()) === null;
  } finally {
    await dir.close().catch(() => {});
  }
}

export async function prepareDestination(dest: string, force: boolean): Promise<Destination> {
  await makeFolders(dest);
  // stat, not lstat: DIR is named by the user, and may be a link to a folder.
  const st = await fsp.stat(dest).catch((e) => {
    throw ioError(e, escapeName(dest));
  });
  if (!st.isDirectory()) throw new UsageError(`${escapeName(dest)}: not a folder`);
  const empty = await isEmptyDir(dest).catch((e) => {
    throw ioError(e, escapeName(dest));
  });
  if (!force && !empty) throw new UsageError(`${escapeName(dest)}: folder is not empty (use --force to extract into it)`);
  return { path: folderPath(dest), heldEntries: !empty, inheritsGroup: (st.mode & 0o2000) !== 0 };
}
