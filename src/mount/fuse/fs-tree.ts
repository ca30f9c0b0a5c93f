/**
 * A filesystem's files as a FUSE tree. The kernel names files by path (the
 * high-level libfuse API), one lookup per component; resolved nodes stay in
 * an LRU cache, so `cat a/b/c` after `ls a/b` costs no reader work.
 *
 * Names that are not UTF-8 reach the kernel with U+FFFD in place of each bad
 * byte: fuse-native passes names as JavaScript strings and back, so the
 * exact bytes cannot cross it. Such a name is found again by listing its
 * directory and comparing the printable forms.
 */
import type { FileSystem, FsNode } from "../../fs/types.js";
import { hasRawBytes, printableName } from "../../fs/names.js";
import { LruCache } from "../../util/lru.js";
import type { FuseStat, FuseStatfs } from "./binding.js";
import { FuseErrno } from "./errno.js";
import type { ServedTree } from "./ops.js";
import { inodeNumber, toFuseStat } from "./stat.js";

/** Paths whose node is kept: a deep tree's directories plus the files being read. */
const NODE_CACHE = 16_384;

export class FilesystemTree implements ServedTree<FsNode> {
  private readonly nodes = new LruCache<string, FsNode>(NODE_CACHE);

  constructor(
    private readonly fs: FileSystem<FsNode>,
    /** Size of the partition it is on, for statfs. */
    private readonly bytes: number,
  ) {}

  private async node(path: string): Promise<FsNode> {
    if (path === "/") return this.fs.root();
    const cached = this.nodes.get(path);
    if (cached) return cached;
    const slash = path.lastIndexOf("/");
    const dir = await this.node(path.slice(0, slash) || "/");
    if (dir.stat.type !== "dir") throw new FuseErrno("ENOTDIR");
    const name = path.slice(slash + 1);
    const node = (await this.fs.lookup(dir, name)) ?? (name.includes("\ufffd") ? await this.findPrintable(dir, name) : undefined);
    if (!node) throw new FuseErrno("ENOENT");
    return this.nodes.set(path, node);
  }

  private async findPrintable(dir: FsNode, printable: string): Promise<FsNode | undefined> {
    for await (const entry of this.fs.list(dir)) {
      if (hasRawBytes(entry.name) && printableName(entry.name) === printable) return entry.node;
    }
    return undefined;
  }

  async stat(path: string): Promise<FuseStat> {
    const node = await this.node(path);
    return toFuseStat(node.stat, inodeNumber(node.stat, path));
  }

  async list(path: string): Promise<string[]> {
    const dir = await this.node(path);
    if (dir.stat.type !== "dir") throw new FuseErrno("ENOTDIR");
    const names: string[] = [];
    for await (const entry of this.fs.list(dir)) {
      // A crafted "." or ".." entry cannot be served: the kernel owns those names.
      if (entry.name === "." || entry.name === ".." || entry.name.includes("/")) continue;
      names.push(printableName(entry.name));
    }
    return names;
  }

  async readlink(path: string): Promise<string> {
    const node = await this.node(path);
    if (node.stat.type !== "symlink") throw new FuseErrno("EINVAL");
    return printableName(await this.fs.readlink(node));
  }

  async open(path: string): Promise<FsNode> {
    const node = await this.node(path);
    if (node.stat.type === "dir") throw new FuseErrno("EISDIR");
    return node;
  }

  async read(node: FsNode, offset: number, into: Buffer): Promise<number> {
    const length = Math.min(into.length, node.stat.size - offset);
    if (length <= 0 || node.stat.type !== "file") return 0;
    const target = into.subarray(0, length);
    const got = await this.fs.read(node, offset, length, target);
    if (got !== target) got.copy(target, 0, 0, length);
    return length;
  }

  statfs(): FuseStatfs {
    return readOnlyStatfs(this.bytes);
  }
}

const BLOCK = 4096;
/** ST_RDONLY: df and findmnt show the mount read-only. */
const ST_RDONLY = 1;

export function readOnlyStatfs(bytes: number): FuseStatfs {
  const blocks = Math.ceil(bytes / BLOCK);
  return { bsize: BLOCK, frsize: BLOCK, blocks, bfree: 0, bavail: 0, files: 0, ffree: 0, favail: 0, fsid: 0, flag: ST_RDONLY, namemax: 255 };
}
