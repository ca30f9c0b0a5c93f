/**
 * Phase 1 of `platter iso`: walk the source folders into a tree of what is
 * there (names, types, modes, owners, times, sizes, link targets). Nothing
 * is read from files yet; sizes come from lstat. Nodes are kept small (a
 * tree of 100,000 files must fit well under 200 MiB): a name is a string
 * unless its bytes are not UTF-8, and a path is built when it is needed.
 */
import { accessSync, constants, lstatSync, promises as fsp, readdirSync, readlinkSync, type Stats } from "node:fs";
import { DeviceError, errnoCode, ioError, UsageError } from "../../../errors.js";

export type SourceKind = "file" | "dir" | "symlink" | "other";

/** A folder as read from disk: its children point to it to know where they are. */
export interface SourceFolder {
  path: Buffer;
}

export interface SourceNode {
  /** The name: text when its bytes are valid UTF-8 (almost always), else the bytes themselves. */
  name: string | Buffer;
  kind: SourceKind;
  /** The folder this entry was read from; a source root is its own (and has the name ""). */
  folder: SourceFolder;
  /** Full st_mode. */
  mode: number;
  uid: number;
  gid: number;
  size: number;
  /** Unix seconds. */
  mtime: number;
  atime: number;
  ctime: number;
  rdev: number;
  /** "dev:ino" of a regular file with more than one link: equal keys are one file (a hard link). */
  linkKey: string | null;
  /** Symlink target bytes. */
  target?: Buffer;
  /** Folder entries, sorted by name bytes. */
  children?: SourceNode[];
}

export interface ScanOptions {
  /** Leave out files and folders that cannot be read (with a warning) instead of failing. */
  skipUnreadable?: boolean;
  /** Files to leave out, as "dev:ino" (the image being written, when it lies inside a source). */
  exclude?: ReadonlySet<string>;
  onWarning?: (message: string) => void;
  /** Called now and then with the number of entries seen so far. */
  onProgress?: (entries: number) => void;
}

const strictUtf8 = new TextDecoder("utf-8", { fatal: true });

/** The name's bytes, as Rock Ridge records them. */
export function nameBytes(node: SourceNode): Buffer {
  return typeof node.name === "string" ? Buffer.from(node.name) : node.name;
}

/** The name as text (for Joliet and ISO 9660 names); bytes that are not UTF-8 read as U+FFFD. */
export function nameText(node: SourceNode): string {
  return typeof node.name === "string" ? node.name : node.name.toString("utf8");
}

/** Where the entry is on disk. */
export function sourcePath(node: SourceNode): Buffer {
  return node.name === "" ? node.folder.path : joinPath(node.folder.path, nameBytes(node));
}

/** A path for messages. */
export function showPath(path: Buffer): string {
  return path.toString("utf8");
}

function compactName(bytes: Buffer): string | Buffer {
  try {
    return strictUtf8.decode(bytes);
  } catch {
    return ownBuffer(bytes);
  }
}

/**
 * fs.Stats numbers come out of a Float64Array: stored as they are, every one
 * is a boxed heap number. Small integers stored as int32 stay unboxed (SMIs),
 * which keeps a node of 100,000 files' tree small.
 */
function compact(n: number): number {
  return n === (n | 0) ? n | 0 : n;
}

/** A buffer of its own: a small Buffer slice would keep a whole 8 KiB pool slab alive. */
function ownBuffer(b: Buffer): Buffer {
  const out = Buffer.allocUnsafeSlow(b.length);
  b.copy(out);
  return out;
}

function kindOf(s: Stats): SourceKind {
  if (s.isFile()) return "file";
  if (s.isDirectory()) return "dir";
  if (s.isSymbolicLink()) return "symlink";
  return "other";
}

const SLASH = Buffer.from("/");

function joinPath(dir: Buffer, name: Buffer): Buffer {
  return dir.length > 0 && dir[dir.length - 1] === 0x2f ? Buffer.concat([dir, name]) : Buffer.concat([dir, SLASH, name]);
}

class Scanner {
  private seen = 0;
  /** access() checks with the real user id. */
  private readonly uid = process.getuid?.() ?? -1;
  constructor(private readonly options: ScanOptions) {}

  /**
   * The file is ours and its owner may read it: access() would say yes (an
   * ACL never restricts the owner), so a tree of one's own files costs one
   * lstat a file. For anything else access() decides. (A security module
   * that refuses anyway is met when the file is copied, and named then.)
   */
  private ownerMayRead(stats: Stats): boolean {
    return stats.uid === this.uid && (stats.mode & 0o400) !== 0;
  }

  /**
   * The node for one entry, and what must be read besides lstat: a symlink's
   * target, whether a file can be opened, a folder's names. Synchronous
   * calls: the scan is a long run of tiny system calls, and awaiting each
   * one costs more time and memory (promises, Stats kept alive) than it does.
   */
  node(folder: SourceFolder, name: string | Buffer, stats: Stats, path: Buffer): { node: SourceNode; names?: Buffer[] } | null {
    const kind = kindOf(stats);
    const node: SourceNode = {
      name,
      kind,
      folder,
      mode: compact(stats.mode),
      uid: compact(stats.uid),
      gid: compact(stats.gid),
      size: compact(kind === "file" ? stats.size : 0),
      mtime: compact(Math.floor(stats.mtimeMs / 1000)),
      atime: compact(Math.floor(stats.atimeMs / 1000)),
      ctime: compact(Math.floor(stats.ctimeMs / 1000)),
      rdev: compact(stats.rdev),
      linkKey: kind === "file" && stats.nlink > 1 ? `${stats.dev}:${stats.ino}` : null,
    };
    if (++this.seen % 1000 === 0) this.options.onProgress?.(this.seen);
    let names: Buffer[] | undefined;
    try {
      if (kind === "symlink") node.target = ownBuffer(readlinkSync(path, { encoding: "buffer" }));
      if (kind === "file" && !this.ownerMayRead(stats)) accessSync(path, constants.R_OK);
      if (kind === "dir") names = readdirSync(path, { encoding: "buffer" });
    } catch (err) {
      return this.unreadable(path, err);
    }
    return { node, names };
  }

  /** A node and, for a folder, everything below it; `path` is where it is (sourcePath of the node). */
  tree(folder: SourceFolder, name: string | Buffer, stats: Stats, path: Buffer): SourceNode | null {
    const found = this.node(folder, name, stats, path);
    if (!found) return null;
    if (found.names) found.node.children = this.children({ path: ownBuffer(path) }, found.names);
    return found.node;
  }

  private unreadable(path: Buffer, err: unknown): null {
    const e = ioError(err, showPath(path));
    if (!this.options.skipUnreadable) {
      throw new DeviceError(`${e.message} (--skip-unreadable leaves it out)`, errnoCode(err), { cause: err });
    }
    this.options.onWarning?.(`left out ${e.message}`);
    return null;
  }

  private children(folder: SourceFolder, names: Buffer[]): SourceNode[] {
    names.sort(Buffer.compare);
    const out: SourceNode[] = [];
    for (const raw of names) {
      const path = joinPath(folder.path, raw);
      let stats: Stats;
      try {
        stats = lstatSync(path);
      } catch (err) {
        this.unreadable(path, err);
        continue;
      }
      if (this.options.exclude?.has(`${stats.dev}:${stats.ino}`)) continue;
      const child = this.tree(folder, compactName(raw), stats, path);
      if (child) out.push(child);
    }
    return out;
  }
}

/**
 * Scan one or more source folders into one tree: their contents are merged
 * at the root (folders of the same name merge; two files of the same name
 * are an error). The root takes its attributes from the first folder.
 */
export async function scanSources(sources: readonly string[], options: ScanOptions = {}): Promise<SourceNode> {
  const scanner = new Scanner(options);
  let root: SourceNode | null = null;
  for (const source of sources) {
    const stats = await checkSourceFolder(source);
    const path = Buffer.from(source);
    const node = scanner.tree({ path }, "", stats, path);
    if (!node) continue;
    root = root ? merge(root, node) : node;
  }
  if (!root) throw new UsageError("no readable source folder");
  return root;
}

/** The stats of a source folder; anything else (missing, a file) is a usage error. */
export async function checkSourceFolder(source: string): Promise<Stats> {
  let stats: Stats;
  try {
    stats = await fsp.stat(source);
  } catch (err) {
    throw new UsageError(ioError(err, source).message);
  }
  if (!stats.isDirectory()) throw new UsageError(`${source}: not a folder (platter iso builds an image from folders)`);
  return stats;
}

function merge(into: SourceNode, from: SourceNode): SourceNode {
  const key = (n: SourceNode) => nameBytes(n).toString("latin1");
  const byName = new Map((into.children ?? []).map((c) => [key(c), c]));
  for (const child of from.children ?? []) {
    const existing = byName.get(key(child));
    if (!existing) {
      byName.set(key(child), child);
    } else if (existing.kind === "dir" && child.kind === "dir") {
      byName.set(key(child), merge(existing, child));
    } else {
      throw new UsageError(`${showPath(sourcePath(existing))} and ${showPath(sourcePath(child))} would have the same name in the image`);
    }
  }
  into.children = [...byName.values()].sort((a, b) => Buffer.compare(nameBytes(a), nameBytes(b)));
  return into;
}
