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
import fsCallback, { constants, promises as fsp } from "node:fs";
import { promisify } from "node:util";
import { join } from "node:path";
import { CorruptImageError, errnoCode, ioError, UsageError } from "../errors.js";
import { numberedName, safeName } from "./safe-name.js";
import type { FileSystem, FsNode } from "./types.js";
import { walk } from "./walk.js";

const CHUNK = 1 << 20;
/** Bytes per in-kernel copy: large enough to be cheap, small enough for progress to move. */
const COPY_PIECE = 16 << 20;
/** Files copied side by side: the work is mostly waiting on system calls. */
const FILES_IN_FLIGHT = 8;

/** Runs at most `limit` tasks at once; the first failure stops new tasks and is rethrown by drain(). */
class TaskPool {
  private readonly running = new Set<Promise<void>>();
  private failure: { error: unknown } | undefined;

  constructor(private readonly limit: number) {}

  async add(task: () => Promise<void>): Promise<void> {
    while (this.running.size >= this.limit) await Promise.race(this.running);
    if (this.failure) throw this.failure.error;
    const run: Promise<void> = task()
      .catch((error: unknown) => {
        this.failure ??= { error };
      })
      .finally(() => this.running.delete(run));
    this.running.add(run);
  }

  /** Wait for every task; rethrow the first failure. */
  async drain(): Promise<void> {
    while (this.running.size > 0) await Promise.race(this.running);
    if (this.failure) throw this.failure.error;
  }
}

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

/** What a target filesystem without symlinks or hard links (FAT, exFAT) answers. */
const CANNOT_HOLD = new Set(["ENOSYS", "EPERM", "EOPNOTSUPP", "ENOTSUP", "EMLINK"]);

const isRoot = typeof process.getuid === "function" && process.getuid() === 0;

/** Who new files belong to, and what the umask takes from their mode, unless told otherwise. */
const creator = {
  uid: process.getuid?.() ?? -1,
  gid: process.getgid?.() ?? -1,
  umask: process.umask(),
};

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
  const inheritsGroup = await prepareDestination(dest, Boolean(options.force));

  // Plan first: the totals drive progress, and a corrupt tree fails before anything is written.
  const plan: Array<Planned<N>> = [];
  if (start.node.stat.type === "dir") {
    // The walk is depth-first, parents first: the latest folder seen at depth d is the parent
    // of the next entries at depth d + 1 (names are not keys: a hostile one may hold a "/").
    const folderAtDepth: number[] = [-1];
    for await (const e of walk(fs, start.node, start.path)) {
      const depth = e.parts.length;
      plan.push({ node: e.node, imagePath: e.path, parent: folderAtDepth[depth - 1], name: e.name });
      if (e.node.stat.type === "dir") folderAtDepth[depth] = plan.length - 1;
    }
  } else {
    plan.push({ node: start.node, imagePath: start.path, parent: -1, name: start.name || "file" });
  }
  const totalFiles = plan.filter((p) => p.node.stat.type === "file").length;
  // Bytes of distinct files: a second hard link costs nothing, and a hole counts as done when its file is.
  const seenIds = new Set<number | string>();
  let totalBytes = 0;
  for (const { node } of plan) {
    const st = node.stat;
    if (st.type !== "file") continue;
    if (st.nlink > 1 && st.id !== null) {
      if (seenIds.has(st.id)) continue;
      seenIds.add(st.id);
    }
    totalBytes += st.size;
  }
  const progress: ExtractProgress = { files: 0, totalFiles, bytes: 0, totalBytes };
  const summary: ExtractSummary = { files: 0, dirs: 0, symlinks: 0, hardlinks: 0, skipped: 0, bytes: 0 };

  // Disk paths this run has claimed, and how many claimed paths fold to each lower-case form.
  const taken = new Set<string>();
  const folded = new Map<string, number>();
  const firstCopies = new Map<number | string, Promise<string>>(); // hard links: node id -> first copy's path
  const symlinks: Array<Planned<N>> = [];
  const dirs: Array<Planned<N>> = [];
  const pool = new TaskPool(FILES_IN_FLIGHT);
  const buffers = new BufferPool();

  /**
   * Create `p` under its parent with `make`, under its safe name or, when that is
   * already one of ours, "name~2", "name~3"... Names are claimed before any await,
   * so files written side by side never race for one name.
   */
  const place = async (p: Planned<N>, make: (path: string) => Promise<void>): Promise<string> => {
    const parentDisk = p.parent < 0 ? dest : (plan[p.parent].diskPath as string);
    const base = safeName(p.name);
    if (base !== p.name) warn(`${p.imagePath}: unsafe name, extracted as ${JSON.stringify(base)}`);
    for (let n = 1; ; n++) {
      const name = n === 1 ? base : numberedName(base, n);
      const path = join(parentDisk, name);
      if (taken.has(path)) continue;
      const lower = path.toLowerCase();
      const caseTwin = (folded.get(lower) ?? 0) > 0;
      taken.add(path);
      folded.set(lower, (folded.get(lower) ?? 0) + 1);
      try {
        await make(path);
      } catch (err) {
        if (errnoCode(err) !== "EEXIST") throw ioError(err, path);
        // On a case-insensitive target, one of ours differing only in case holds the name.
        if (caseTwin) continue;
        await replaceExisting(path, p, make);
      }
      if (n > 1) warn(`${p.imagePath}: name clashes with one already extracted, extracted as ${JSON.stringify(name)}`);
      return path;
    }
  };

  /** Something that was in DEST before holds the name: only --force may replace it, and never through a link. */
  const replaceExisting = async (path: string, p: Planned<N>, make: (path: string) => Promise<void>): Promise<void> => {
    if (!options.force) throw new UsageError(`${path}: already exists (use --force to replace it)`);
    const st = await fsp.lstat(path).catch((e) => {
      throw ioError(e, path);
    });
    if (st.isDirectory()) {
      if (p.node.stat.type === "dir") return; // reuse a real folder (lstat: not a link to one)
      throw new UsageError(`${path}: a folder is in the way of ${p.imagePath}`);
    }
    try {
      await fsp.unlink(path);
      await make(path);
    } catch (err) {
      throw ioError(err, path);
    }
  };

  const fileDone = () => {
    summary.files++;
    progress.files++;
    options.onProgress?.(progress);
  };

  try {
    for (const p of plan) {
      const st = p.node.stat;
      if (st.type === "dir") {
        p.diskPath = await place(p, (path) => fsp.mkdir(path, 0o700));
        dirs.push(p);
        summary.dirs++;
      } else if (st.type === "file") {
        const linkId = st.nlink > 1 ? st.id : null;
        const first = linkId !== null ? firstCopies.get(linkId) : undefined;
        if (first) {
          summary.hardlinks++;
          await pool.add(async () => {
            const target = await first;
            p.diskPath = await place(p, async (path) => {
              try {
                await fsp.link(target, path);
              } catch (err) {
                if (!CANNOT_HOLD.has(errnoCode(err) ?? "")) throw err;
                warn(`${p.imagePath}: the target filesystem cannot hold hard links; extracted as a copy`);
                await writeFile(fs, p.node, path, { owners, inheritsGroup, buffers, progress, onProgress: options.onProgress });
              }
            });
            fileDone();
          });
        } else {
          summary.bytes += st.size;
          let written!: (path: string) => void;
          let failed!: (err: unknown) => void;
          const copy = new Promise<string>((resolve, reject) => {
            written = resolve;
            failed = reject;
          });
          copy.catch(() => {}); // the task itself reports the error
          if (linkId !== null) firstCopies.set(linkId, copy);
          await pool.add(async () => {
            try {
              p.diskPath = await place(p, (path) => writeFile(fs, p.node, path, { owners, inheritsGroup, buffers, progress, onProgress: options.onProgress }));
              written(p.diskPath);
            } catch (err) {
              failed(err);
              throw err;
            }
            fileDone();
          });
        }
      } else if (st.type === "symlink") {
        symlinks.push(p);
      } else {
        warn(`${p.imagePath}: special file (device, fifo or socket) not extracted`);
        summary.skipped++;
      }
    }
  } finally {
    await pool.drain();
  }

  for (const p of symlinks) {
    const target = await fs.readlink(p.node);
    if (target.includes("\0")) {
      warn(`${p.imagePath}: symlink target contains a NUL byte; not extracted`);
      summary.skipped++;
      continue;
    }
    try {
      p.diskPath = await place(p, (path) => fsp.symlink(target, path));
    } catch (err) {
      if (!CANNOT_HOLD.has(errnoCode(err) ?? "")) throw err;
      warn(`${p.imagePath}: not extracted: the target filesystem cannot hold symbolic links`);
      summary.skipped++;
      continue;
    }
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

/** Create DEST if needed and check it; true when it is setgid (what is made in it takes its group). */
async function prepareDestination(dest: string, force: boolean): Promise<boolean> {
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
  return (st.mode & 0o2000) !== 0;
}

/** Chunk buffers reused across files: allocating a fresh MiB per chunk costs more than the copy. */
class BufferPool {
  private readonly free: Buffer[] = [];
  get(): Buffer {
    return this.free.pop() ?? Buffer.allocUnsafe(CHUNK);
  }
  put(b: Buffer): void {
    this.free.push(b);
  }
}

const fdOpen = promisify(fsCallback.open);
const fdWrite = promisify(fsCallback.write);
const fdClose = promisify(fsCallback.close);
const fdTruncate = promisify(fsCallback.ftruncate);
const fdChown = promisify(fsCallback.fchown);
const fdChmod = promisify(fsCallback.fchmod);
const fdUtimes = promisify(fsCallback.futimes);

/** Copy a data range inside the kernel, in pieces so progress moves; false if the filesystem or source cannot. */
async function copyRange<N extends FsNode>(
  fs: FileSystem<N>,
  node: N,
  start: number,
  length: number,
  fd: number,
  context: { progress: ExtractProgress; onProgress?: (p: ExtractProgress) => void },
): Promise<boolean> {
  const end = start + length;
  for (let pos = start; pos < end; pos += COPY_PIECE) {
    const n = Math.min(COPY_PIECE, end - pos);
    if (!(await fs.copyTo?.(node, pos, n, fd))) {
      if (pos === start) return false;
      throw new CorruptImageError(`${fd}: in-kernel copy stopped part-way`);
    }
    context.progress.bytes += n;
    context.onProgress?.(context.progress);
  }
  return true;
}

/** Write one regular file: data ranges only (holes stay holes), then size, mode, owner, mtime. */
async function writeFile<N extends FsNode>(
  fs: FileSystem<N>,
  node: N,
  path: string,
  context: {
    owners: boolean;
    /** DEST is setgid: new files take its group, so owners must always be set. */
    inheritsGroup: boolean;
    buffers: BufferPool;
    progress: ExtractProgress;
    onProgress?: (p: ExtractProgress) => void;
  },
): Promise<void> {
  const st = node.stat;
  // Created with its final permission bits; fchmod only when the umask took some away or
  // setuid/setgid/sticky bits are wanted (fewer system calls per file counts with many files).
  const fd = await fdOpen(path, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, st.mode & 0o777);
  const { buffers, progress } = context;
  let complete = false;
  const a = buffers.get();
  const b = buffers.get();
  try {
    const ranges = fs.dataRanges ? await fs.dataRanges(node) : st.size > 0 ? [[0, st.size] as [number, number]] : [];
    let written = 0; // end of the last data written
    for (const [start, length] of ranges) {
      const end = start + length;
      if (fs.copyTo && (await copyRange(fs, node, start, length, fd, context))) {
        written = end;
        continue;
      }
      // Double buffering: the next chunk is read into one buffer while the other is written out.
      let [current, other] = [a, b];
      let next: Promise<Buffer> | undefined = fs.read(node, start, Math.min(CHUNK, length), current);
      let pos = start;
      while (next) {
        const chunk: Buffer = await next;
        const after: number = pos + chunk.length;
        next = after < end ? fs.read(node, after, Math.min(CHUNK, end - after), other) : undefined;
        [current, other] = [other, current];
        next?.catch(() => {}); // awaited on the next turn; do not let it go unhandled meanwhile
        for (let done = 0; done < chunk.length; ) {
          done += (await fdWrite(fd, chunk, done, chunk.length - done, pos + done)).bytesWritten;
        }
        pos = after;
        written = after;
        progress.bytes += chunk.length;
        context.onProgress?.(progress);
      }
    }
    if (written !== st.size) await fdTruncate(fd, st.size); // the file ends in a hole
    progress.bytes += st.size - ranges.reduce((n, [, length]) => n + length, 0); // its holes
    if (context.owners && (context.inheritsGroup || st.uid !== creator.uid || st.gid !== creator.gid)) {
      await fdChown(fd, st.uid, st.gid).catch(() => {});
    }
    if (st.mode & ~0o777 || (st.mode & creator.umask) !== 0) await fdChmod(fd, st.mode);
    await fdUtimes(fd, asDate(st.mtime), asDate(st.mtime));
    complete = true;
  } catch (err) {
    throw ioError(err, path);
  } finally {
    buffers.put(a);
    buffers.put(b);
    await fdClose(fd);
    // Never leave a partial file that looks complete.
    if (!complete) await fsp.unlink(path).catch(() => {});
  }
}
