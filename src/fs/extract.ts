/**
 * The safe extractor: copy a tree out of a filesystem into a folder.
 *
 * Whatever the image says, nothing is written outside the folder:
 * - names are made safe first (no "/", NUL, "." or ".."; at most 255 bytes);
 * - every file is created with O_EXCL | O_NOFOLLOW and every folder with
 *   mkdir, so nothing existing is followed or overwritten by accident;
 * - symbolic links are created last, after every file and folder, so no
 *   write ever goes through one, wherever it points;
 * - a name that clashes with one already extracted (duplicate entries, or
 *   names equal but for case on a case-insensitive target) gets a "~N"
 *   suffix and a warning.
 * Modes, mtimes, symlinks and hard links are kept (owners too, when run as
 * root); sparse files are written sparse; directories get their modes and
 * mtimes last, deepest first.
 */
import { constants, promises as fsp } from "node:fs";
import { join } from "node:path";
import { ioError, UsageError } from "../errors.js";
import { numberedName, safeName } from "./safe-name.js";
import type { FileSystem, FsNode } from "./types.js";
import { walk } from "./walk.js";

const CHUNK = 1 << 20;

export interface ExtractProgress {
  files: number;
  totalFiles: number;
  bytes: number;
  totalBytes: number;
}

export interface ExtractOptions {
  /** Extract into a folder that is not empty, replacing files (never following links) in the way. */
  force?: boolean;
  /** Keep owners (uid/gid); default: when running as root. */
  owners?: boolean;
  onProgress?: (p: ExtractProgress) => void;
  /** Entries renamed or skipped, with why. */
  onWarning?: (message: string) => void;
}

export interface ExtractSummary {
  files: number;
  dirs: number;
  symlinks: number;
  hardlinks: number;
  skipped: number;
  bytes: number;
}

interface Planned<N extends FsNode> {
  node: N;
  /** Path inside the image, for messages. */
  imagePath: string;
  /** Index of the parent in the plan, -1 for the destination folder itself. */
  parent: number;
  name: string;
  /** Where it was created on disk, once it is. */
  diskPath?: string;
}

/** Node's utimes takes a negative number (before 1970) as "now"; a Date it takes as is. */
function asDate(seconds: number): Date {
  return new Date(seconds * 1000);
}

const isRoot = typeof process.getuid === "function" && process.getuid() === 0;

async function isEmptyDir(path: string): Promise<boolean> {
  const dir = await fsp.opendir(path);
  try {
    return (await dir.read()) === null;
  } finally {
    await dir.close().catch(() => {});
  }
}

/**
 * Extract `start` (a directory: its contents; anything else: itself) into
 * the folder `dest`, which is created if missing and must be empty unless
 * `force`.
 */
export async function extractTree<N extends FsNode>(
  fs: FileSystem<N>,
  start: { node: N; path: string; name: string },
  dest: string,
  options: ExtractOptions = {},
): Promise<ExtractSummary> {
  const owners = options.owners ?? isRoot;
  const warn = options.onWarning ?? (() => {});
  await prepareDestination(dest, Boolean(options.force));

  // Plan first: the totals drive progress, and a corrupt tree fails before anything is written.
  const plan: Array<Planned<N>> = [];
  if (start.node.stat.type === "dir") {
    const index = new Map<string, number>();
    for await (const e of walk(fs, start.node, start.path)) {
      const parentKey = e.parts.slice(0, -1).join("/");
      plan.push({ node: e.node, imagePath: e.path, parent: parentKey === "" ? -1 : (index.get(parentKey) ?? -1), name: e.name });
      if (e.node.stat.type === "dir") index.set(e.parts.join("/"), plan.length - 1);
    }
  } else {
    plan.push({ node: start.node, imagePath: start.path, parent: -1, name: start.name || "file" });
  }
  const totalFiles = plan.filter((p) => p.node.stat.type === "file").length;
  const totalBytes = plan.reduce((n, p) => n + (p.node.stat.type === "file" ? p.node.stat.size : 0), 0);
  const progress: ExtractProgress = { files: 0, totalFiles, bytes: 0, totalBytes };
  const summary: ExtractSummary = { files: 0, dirs: 0, symlinks: 0, hardlinks: 0, skipped: 0, bytes: 0 };

  const created = new Set<string>(); // disk paths this run made
  const createdFolded = new Set<string>();
  const linkedFiles = new Map<number | string, string>(); // node id -> disk path of its first copy
  const symlinks: Array<Planned<N>> = [];
  const dirs: Array<Planned<N>> = [];

  /** Create `name` under `parentDisk` with `make`, resolving clashes; returns the path used. */
  const place = async (p: Planned<N>, make: (path: string) => Promise<void>): Promise<string> => {
    const parentDisk = p.parent < 0 ? dest : (plan[p.parent].diskPath as string);
    const base = safeName(p.name);
    if (base !== p.name) warn(`${p.imagePath}: unsafe name, extracted as ${JSON.stringify(base)}`);
    for (let n = 1; ; n++) {
      const name = n === 1 ? base : numberedName(base, n);
      const path = join(parentDisk, name);
      try {
        await make(path);
        created.add(path);
        createdFolded.add(path.toLowerCase());
        if (n > 1) warn(`${p.imagePath}: name clashes with one already extracted, extracted as ${JSON.stringify(name)}`);
        return path;
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== "EEXIST") throw ioError(err, path);
        if (created.has(path) || createdFolded.has(path.toLowerCase())) continue; // ours: pick another name
        if (!options.force) throw new UsageError(`${path}: already exists (use --force to replace it)`);
        const st = await fsp.lstat(path);
        if (st.isDirectory()) {
          if (p.node.stat.type === "dir") return path; // reuse a real folder (lstat: not a link to one)
          throw new UsageError(`${path}: a folder is in the way of ${p.imagePath}`);
        }
        await fsp.unlink(path).catch((e) => {
          throw ioError(e, path);
        });
        n--; // retry the same name
      }
    }
  };

  for (const p of plan) {
    const st = p.node.stat;
    if (st.type === "dir") {
      p.diskPath = await place(p, (path) => fsp.mkdir(path, 0o700));
      dirs.push(p);
      summary.dirs++;
    } else if (st.type === "file") {
      const firstCopy = st.nlink > 1 && st.id !== null ? linkedFiles.get(st.id) : undefined;
      if (firstCopy) {
        p.diskPath = await place(p, (path) => fsp.link(firstCopy, path));
        summary.hardlinks++;
      } else {
        p.diskPath = await place(p, (path) => writeFile(fs, p.node, path, owners, progress, options.onProgress));
        if (st.nlink > 1 && st.id !== null) linkedFiles.set(st.id, p.diskPath);
        summary.bytes += st.size;
      }
      summary.files++;
      progress.files++;
      options.onProgress?.(progress);
    } else if (st.type === "symlink") {
      symlinks.push(p);
    } else {
      warn(`${p.imagePath}: special file (device, fifo or socket) not extracted`);
      summary.skipped++;
    }
  }

  for (const p of symlinks) {
    const target = await fs.readlink(p.node);
    if (target.includes("\0")) {
      warn(`${p.imagePath}: symlink target contains a NUL byte; not extracted`);
      summary.skipped++;
      continue;
    }
    p.diskPath = await place(p, (path) => fsp.symlink(target, path));
    const st = p.node.stat;
    await fsp.lutimes(p.diskPath, asDate(st.mtime), asDate(st.mtime)).catch((e) => {
      throw ioError(e, p.diskPath as string);
    });
    if (owners) await fsp.lchown(p.diskPath, st.uid, st.gid).catch(() => {});
    summary.symlinks++;
  }

  for (let i = dirs.length - 1; i >= 0; i--) {
    const p = dirs[i];
    const path = p.diskPath as string;
    const st = p.node.stat;
    try {
      if (owners) await fsp.chown(path, st.uid, st.gid);
      await fsp.chmod(path, st.mode);
      await fsp.utimes(path, asDate(st.mtime), asDate(st.mtime));
    } catch (err) {
      throw ioError(err, path);
    }
  }
  options.onProgress?.(progress);
  return summary;
}

async function prepareDestination(dest: string, force: boolean): Promise<void> {
  try {
    await fsp.mkdir(dest, { recursive: true });
  } catch (err) {
    throw ioError(err, dest);
  }
  const st = await fsp.stat(dest).catch((e) => {
    throw ioError(e, dest);
  });
  if (!st.isDirectory()) throw new UsageError(`${dest}: not a folder`);
  if (!force && !(await isEmptyDir(dest))) throw new UsageError(`${dest}: folder is not empty (use --force to extract into it)`);
}

/** Write one regular file: data ranges only (holes stay holes), then size, mode, owner, mtime. */
async function writeFile<N extends FsNode>(
  fs: FileSystem<N>,
  node: N,
  path: string,
  owners: boolean,
  progress: ExtractProgress,
  onProgress?: (p: ExtractProgress) => void,
): Promise<void> {
  const handle = await fsp.open(path, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, 0o600);
  let complete = false;
  try {
    const st = node.stat;
    const ranges = fs.dataRanges ? await fs.dataRanges(node) : st.size > 0 ? [[0, st.size] as [number, number]] : [];
    for (const [start, length] of ranges) {
      const end = start + length;
      let next: Promise<Buffer> | undefined = fs.read(node, start, Math.min(CHUNK, length));
      let pos = start;
      while (next) {
        const chunk: Buffer = await next;
        const after: number = pos + chunk.length;
        next = after < end ? fs.read(node, after, Math.min(CHUNK, end - after)) : undefined;
        next?.catch(() => {}); // awaited on the next turn; do not let it go unhandled meanwhile
        await writeAll(handle, chunk, pos, path);
        pos = after;
        progress.bytes += chunk.length;
        onProgress?.(progress);
      }
    }
    await handle.truncate(st.size);
    if (owners) await handle.chown(st.uid, st.gid).catch(() => {});
    await handle.chmod(st.mode);
    await handle.utimes(asDate(st.mtime), asDate(st.mtime));
    complete = true;
  } catch (err) {
    throw ioError(err, path);
  } finally {
    await handle.close();
    // Never leave a partial file that looks complete.
    if (!complete) await fsp.unlink(path).catch(() => {});
  }
}

async function writeAll(handle: fsp.FileHandle, data: Buffer, offset: number, path: string): Promise<void> {
  let done = 0;
  while (done < data.length) {
    const { bytesWritten } = await handle.write(data, done, data.length - done, offset + done).catch((e) => {
      throw ioError(e, path);
    });
    done += bytesWritten;
  }
}
