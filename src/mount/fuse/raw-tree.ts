/**
 * `mount --fuse --raw`: the decoded disk and each partition as plain
 * read-only files (disk, p1, p2, p5...), so tools that want a file — mount
 * -o loop, fsck -n, qemu — get one without a temporary copy of a
 * compressed or virtual disk.
 */
import type { BlockSource } from "../../io/block-source.js";
import type { FuseStat, FuseStatfs } from "./binding.js";
import { FuseErrno } from "./errno.js";
import { readOnlyStatfs } from "./fs-tree.js";
import type { ServedTree } from "./ops.js";
import { toFuseStat } from "./stat.js";

export class RawTree implements ServedTree<BlockSource> {
  private readonly files: Map<string, BlockSource>;

  constructor(
    /** "disk", "p1"... in the order they are listed. */
    files: ReadonlyArray<[name: string, source: BlockSource]>,
    private readonly mtime: number,
  ) {
    this.files = new Map(files);
  }

  private source(path: string): BlockSource {
    const source = this.files.get(path.slice(1));
    if (!source) throw new FuseErrno("ENOENT");
    return source;
  }

  async stat(path: string): Promise<FuseStat> {
    const base = { uid: process.getuid?.() ?? 0, gid: process.getgid?.() ?? 0, mtime: this.mtime, id: null };
    if (path === "/") return toFuseStat({ ...base, type: "dir", size: 0, mode: 0o555, nlink: 2 }, 1);
    const source = this.source(path);
    const ino = 2 + [...this.files.values()].indexOf(source);
    return toFuseStat({ ...base, type: "file", size: source.size, mode: 0o444, nlink: 1 }, ino);
  }

  async list(path: string): Promise<string[]> {
    if (path !== "/") throw new FuseErrno("ENOTDIR");
    return [...this.files.keys()];
  }

  async readlink(): Promise<string> {
    throw new FuseErrno("EINVAL");
  }

  async open(path: string): Promise<BlockSource> {
    if (path === "/") throw new FuseErrno("EISDIR");
    return this.source(path);
  }

  async read(source: BlockSource, offset: number, into: Buffer): Promise<number> {
    const length = Math.min(into.length, source.size - offset);
    if (length <= 0) return 0;
    const target = into.subarray(0, length);
    const got = await source.read(offset, length, target);
    if (got !== target) got.copy(target, 0, 0, length);
    return length;
  }

  statfs(): FuseStatfs {
    let bytes = 0;
    for (const source of this.files.values()) bytes += source.size;
    return readOnlyStatfs(bytes);
  }
}
