/**
 * Reading and saving a mapfile on disk. A save writes a temporary file next
 * to the mapfile, syncs it and renames it over the old one, so a crash at
 * any moment leaves either the previous map or the new one, never half of one.
 */
import { constants, promises as fsp } from "node:fs";
import { basename, dirname, join } from "node:path";
import { CorruptImageError, ioError } from "../errors.js";
import { decodeMapfile, type Mapfile } from "./mapfile.js";

/** The parsed mapfile, or undefined when there is none yet. */
export async function loadMapfile(path: string): Promise<Mapfile | undefined> {
  let text: string;
  try {
    text = await fsp.readFile(path, "utf8");
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw ioError(err, path);
  }
  try {
    return decodeMapfile(text);
  } catch (err) {
    if (err instanceof CorruptImageError) throw new CorruptImageError(`${path}: ${err.message}`);
    throw err;
  }
}

/** Atomically replace the mapfile at `path` with `text`. */
export async function saveMapfile(path: string, text: string): Promise<void> {
  const temp = join(dirname(path), `.${basename(path)}.${process.pid}.tmp`);
  try {
    const handle = await fsp.open(temp, "w", 0o644);
    try {
      await handle.writeFile(text);
      await handle.datasync();
    } finally {
      await handle.close();
    }
    await fsp.rename(temp, path);
  } catch (err) {
    await fsp.rm(temp, { force: true });
    throw ioError(err, `${path}: saving the mapfile`);
  }
  await syncDirectory(dirname(path));
}

/** Make a rename durable. Some file systems refuse fsync on a folder; that is not fatal. */
async function syncDirectory(dir: string): Promise<void> {
  try {
    const handle = await fsp.open(dir, constants.O_RDONLY | constants.O_DIRECTORY);
    try {
      await handle.sync();
    } finally {
      await handle.close();
    }
  } catch {
    // best effort
  }
}

/** "2024-05-01 13:45:07" in local time, as ddrescue writes its timestamps. */
export function mapTimestamp(date: Date): string {
  const p = (n: number) => String(n).padStart(2, "0");
  return `${date.getFullYear()}-${p(date.getMonth() + 1)}-${p(date.getDate())} ${p(date.getHours())}:${p(date.getMinutes())}:${p(date.getSeconds())}`;
}
