/**
 * Phase 1 of `platter iso`: walk the source folders into a tree of what is
 * there (names as raw bytes, types, modes, owners, times, sizes, link
 * targets). Nothing is read from files yet; sizes come from lstat.
 */
import { constants, promises as fsp, type Stats } from "node:fs";
import { DeviceError, errnoCode, ioError, UsageError } from "../../../errors.js";

export type SourceKind = "file" | "dir" | "symlink" | "other";

export interface SourceNode {
  /** The name as the filesystem stores it (bytes; Rock Ridge keeps them exactly). */
  name: Buffer;
  /** The name as text (for Joliet and the ISO 9660 name); invalid UTF-8 becomes U+FFFD. */
  text: string;
  kind: SourceKind;
  /** Where to read it from. */
  path: Buffer;
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

const STAT_BATCH = 64;

function kindOf(s: Stats): SourceKind {
  if (s.isFile()) return "file";
  if (s.isDirectory()) return "dir";
  if (s.isSymbolicLink()) return "symlink";
  return "other";
}

function show(path: Buffer): string {
  return path.toString("utf8");
}

function joinPath(dir: Buffer, name: Buffer): Buffer {
  return dir.length > 0 && dir[dir.length - 1] === 0x2f ? Buffer.concat([dir, name]) : Buffer.concat([dir, Buffer.from("/"), name]);
}

class Scanner {
  private seen = 0;
  constructor(private readonly options: ScanOptions) {}

  async node(path: Buffer, name: Buffer, stats: Stats): Promise<SourceNode | null> {
    const kind = kindOf(stats);
    const node: SourceNode = {
      name,
      text: name.toString("utf8"),
      kind,
      path,
      mode: stats.mode,
      uid: stats.uid,
      gid: stats.gid,
      size: kind === "file" ? stats.size : 0,
      mtime: Math.floor(stats.mtimeMs / 1000),
      atime: Math.floor(stats.atimeMs / 1000),
      ctime: Math.floor(stats.ctimeMs / 1000),
      rdev: stats.rdev,
      linkKey: kind === "file" && stats.nlink > 1 ? `${stats.dev}:${stats.ino}` : null,
    };
    if (++this.seen % 1000 === 0) this.options.onProgress?.(this.seen);
    let names: Buffer[] | undefined;
    try {
      if (kind === "symlink") node.target = (await fsp.readlink(path, { encoding: "buffer" })) as Buffer;
      if (kind === "file") await fsp.access(path, constants.R_OK);
      if (kind === "dir") names = (await fsp.readdir(path, { encoding: "buffer" })) as Buffer[];
    } catch (err) {
      return this.unreadable(path, err);
    }
    if (names) node.children = await this.children(path, names);
    return node;
  }

  private unreadable(path: Buffer, err: unknown): null {
    const e = ioError(err, show(path));
    if (!this.options.skipUnreadable) {
      throw new DeviceError(`${e.message} (--skip-unreadable leaves it out)`, errnoCode(err), { cause: err });
    }
    this.options.onWarning?.(`left out ${e.message}`);
    return null;
  }

  private async children(dir: Buffer, names: Buffer[]): Promise<SourceNode[]> {
    names.sort(Buffer.compare);
    const out: SourceNode[] = [];
    for (let i = 0; i < names.length; i += STAT_BATCH) {
      const batch = names.slice(i, i + STAT_BATCH);
      const stats = await Promise.all(
        batch.map(async (name) => {
          const path = joinPath(dir, name);
          try {
            return { name, path, stats: await fsp.lstat(path) };
          } catch (err) {
            return { name, path, error: err };
          }
        }),
      );
      for (const s of stats) {
        if ("error" in s) {
          this.unreadable(s.path, s.error);
          continue;
        }
        if (this.options.exclude?.has(`${s.stats.dev}:${s.stats.ino}`)) continue;
        const child = await this.node(s.path, s.name, s.stats);
        if (child) out.push(child);
      }
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
    const node = await scanner.node(path, Buffer.alloc(0), stats);
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
  const byName = new Map((into.children ?? []).map((c) => [c.name.toString("latin1"), c]));
  for (const child of from.children ?? []) {
    const key = child.name.toString("latin1");
    const existing = byName.get(key);
    if (!existing) {
      byName.set(key, child);
    } else if (existing.kind === "dir" && child.kind === "dir") {
      byName.set(key, merge(existing, child));
    } else {
      throw new UsageError(`${show(existing.path)} and ${show(child.path)} would have the same name in the image`);
    }
  }
  into.children = [...byName.values()].sort((a, b) => Buffer.compare(a.name, b.name));
  return into;
}
