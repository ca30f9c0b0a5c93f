/**
 * A folder being filled: how the names in it are given out, and when it is
 * finished.
 *
 * Names: an entry gets its safe name (safe-name.ts) or, when that is taken
 * by one of this run's entries (a duplicate in a corrupt image, a case twin
 * on a case-insensitive target), "name~2", "name~3"... A taken name that is
 * not ours is a stale entry from before (--force): it is replaced, never
 * followed, and a folder in the way of a folder is reused. In a folder this
 * run made, every taken name is ours. In one that held entries before, the
 * names this run made there are remembered, and whether the folder tells
 * case apart is asked of the target once (a probe file), so that a stale `a`
 * is replaced even when this run already made an `A`, and an `A` of ours is
 * never taken for a stale `a`. (Inode numbers cannot tell: a FUSE filesystem
 * gives `a` and `A` different ones.)
 *
 * Finish: a folder's mode, owner and mtime are set once the walk has left it
 * and no file below it is still being written, so creating its entries does
 * not undo them, and a read-only folder is filled before it becomes one.
 */
import { constants, promises as fsp } from "node:fs";
import { DeviceError, errnoCode, ioError, UsageError } from "../../errors.js";
import { escapeName } from "../names.js";
import { numberedName, safeName } from "../safe-name.js";
import type { FsStat } from "../types.js";
import { childPath, shown } from "./disk-path.js";
import { asDate } from "./write-file.js";

export interface FolderContext {
  /** Stale entries in the way may be replaced. */
  force: boolean;
  owners: boolean;
  warn(message: string): void;
}

export interface Placed<T> {
  path: Buffer;
  /** What `make` returned, unless an existing folder was reused instead. */
  made?: T;
  /** A folder from before this run was reused. */
  reused: boolean;
}

/** A symbolic link made after the folder's other entries (see index.ts). */
export interface DeferredSymlink {
  name: string;
  imagePath: string;
  target: string;
  stat: FsStat;
}

/** Names compared as a case-insensitive target compares them (ASCII and simple Unicode case). */
const folded = (name: string) => name.toLowerCase();

/** The names this run made in a folder that held entries before. */
interface OurNames {
  exact: Set<string>;
  folded: Set<string>;
  /** Whether the target folds case here; asked once, when first needed. */
  caseInsensitive?: Promise<boolean>;
}

let probes = 0;

/** Does the folder at `path` find a name under another case? One probe file, removed at once. */
async function foldsCase(path: Buffer): Promise<boolean> {
  const name = `.platter-case-probe-${process.pid}-${probes++}`;
  const probe = childPath(path, name);
  const handle = await fsp.open(probe, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, 0o600).catch((e) => {
    throw ioError(e, shown(probe));
  });
  await handle.close();
  try {
    await fsp.lstat(childPath(path, name.toUpperCase()));
    return true;
  } catch {
    return false;
  } finally {
    await fsp.unlink(probe).catch(() => {});
  }
}

export class Folder {
  /** Kept only where stale entries may be (--force). */
  private readonly ours: OurNames | undefined;
  private entries = 0;
  /** Files below this folder still being written. */
  private writing = 0;
  private left = false;
  readonly symlinks: DeferredSymlink[] = [];

  constructor(
    readonly path: Buffer,
    /** The image's stat of this folder; undefined for DIR itself, which keeps its own. */
    private readonly stat: FsStat | undefined,
    heldEntries: boolean,
    private readonly context: FolderContext,
  ) {
    this.ours = heldEntries ? { exact: new Set(), folded: new Set() } : undefined;
  }

  /**
   * Create the entry `name` here with `make`, which must fail with EEXIST when
   * its path is taken (O_EXCL, mkdir, link, symlink). For a folder (`isFolder`),
   * a stale folder in the way is reused instead (`made` is then undefined).
   */
  async place<T>(name: string, imagePath: string, isFolder: boolean, make: (path: Buffer) => Promise<T>): Promise<Placed<T>> {
    const base = safeName(name);
    if (base !== name) this.context.warn(`${escapeName(imagePath)}: unsafe name, extracted as "${escapeName(base)}"`);
    for (let n = 1; ; n++) {
      const diskName = n === 1 ? base : numberedName(base, n);
      const path = childPath(this.path, diskName);
      let placed: Placed<T>;
      try {
        placed = { path, made: await make(path), reused: false };
      } catch (err) {
        if (errnoCode(err) !== "EEXIST") throw ioError(err, shown(path));
        if (await this.holdsOurs(diskName)) {
          // Each name tried so far is held by a different entry of ours; more tries than entries is a target that lies.
          if (n > this.entries) throw new DeviceError(`${shown(path)}: the target says the name is taken, by no entry of this run or before it`, "EEXIST");
          continue;
        }
        placed = await this.replaceStale(path, imagePath, isFolder, make);
      }
      this.entries++;
      this.ours?.exact.add(diskName);
      this.ours?.folded.add(folded(diskName));
      if (n > 1) this.context.warn(`${escapeName(imagePath)}: name clashes with one already extracted, extracted as "${escapeName(diskName)}"`);
      return placed;
    }
  }

  /** Whether what holds `name` here (it exists) was made by this run. */
  private async holdsOurs(name: string): Promise<boolean> {
    const ours = this.ours;
    if (!ours || ours.exact.has(name)) return true;
    if (!ours.folded.has(folded(name))) return false;
    ours.caseInsensitive ??= foldsCase(this.path);
    return ours.caseInsensitive;
  }

  /** Something that was here before holds the name: only --force may replace it, and never through a link. */
  private async replaceStale<T>(path: Buffer, imagePath: string, isFolder: boolean, make: (path: Buffer) => Promise<T>): Promise<Placed<T>> {
    if (!this.context.force) throw new UsageError(`${shown(path)}: already exists (use --force to replace it)`);
    try {
      const st = await fsp.lstat(path);
      if (st.isDirectory()) {
        if (isFolder) return { path, reused: true }; // a real folder (lstat: not a link to one)
        throw new UsageError(`${shown(path)}: a folder is in the way of ${escapeName(imagePath)}`);
      }
      await fsp.unlink(path);
      return { path, made: await make(path), reused: false };
    } catch (err) {
      throw ioError(err, shown(path));
    }
  }

  /** A file below this folder started being written. */
  hold(): void {
    this.writing++;
  }

  /** A file below this folder is written: the folder is finished if the walk has left it. */
  async release(): Promise<void> {
    this.writing--;
    if (this.left && this.writing === 0) await this.finish();
  }

  /** The walk has left this folder: nothing more is created in it. */
  async leave(): Promise<void> {
    this.left = true;
    if (this.writing === 0) await this.finish();
  }

  private async finish(): Promise<void> {
    const st = this.stat;
    if (!st) return;
    try {
      if (this.context.owners) await fsp.chown(this.path, st.uid, st.gid);
      await fsp.chmod(this.path, st.mode);
      await fsp.utimes(this.path, asDate(st.mtime), asDate(st.mtime));
    } catch (err) {
      throw ioError(err, shown(this.path));
    }
  }
}
