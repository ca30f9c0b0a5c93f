/**
 * Resolve a path inside a filesystem the way the kernel would: "." and "..",
 * symbolic links (relative to their directory, absolute ones from the
 * filesystem's root, never escaping it), at most MAX_SYMLINKS of them.
 */
import { CorruptImageError, UsageError } from "../errors.js";
import { escapeName } from "./names.js";
import type { FileSystem, FsNode } from "./types.js";

/** Linux's limit on links followed in one lookup (MAXSYMLINKS). */
export const MAX_SYMLINKS = 40;

export interface ResolvedPath<N extends FsNode> {
  node: N;
  /** The canonical path inside the filesystem: "/home/alice/hello.txt". */
  path: string;
  /** The last component's name ("" for the root). */
  name: string;
}

export interface ResolveOptions {
  /** Follow a symbolic link in the last component (cat: yes; ls -l, extract: no). */
  followFinal?: boolean;
}

function components(path: string): string[] {
  return path.split("/").filter((c) => c !== "" && c !== ".");
}

export async function resolvePath<N extends FsNode>(
  fs: FileSystem<N>,
  path: string,
  options: ResolveOptions = {},
): Promise<ResolvedPath<N>> {
  const followFinal = options.followFinal ?? true;
  const root = await fs.root();
  const stack: Array<{ name: string; node: N }> = [];
  const current = () => stack[stack.length - 1]?.node ?? root;
  const pending = components(path);
  let links = 0;
  while (pending.length > 0) {
    const part = pending.shift() as string;
    if (part === "..") {
      stack.pop();
      continue;
    }
    const dir = current();
    const where = escapeName(`/${[...stack.map((s) => s.name), part].join("/")}`);
    if (dir.stat.type !== "dir") throw new UsageError(`${where}: not a directory (in the image)`);
    const node = await fs.lookup(dir, part);
    if (!node) throw new UsageError(`${where}: no such file or directory in the image`);
    const isLast = pending.length === 0;
    if (node.stat.type === "symlink" && (!isLast || followFinal)) {
      if (++links > MAX_SYMLINKS) throw new CorruptImageError(`${where}: too many levels of symbolic links`);
      const target = await fs.readlink(node);
      if (target.startsWith("/")) stack.length = 0;
      pending.unshift(...components(target));
      continue;
    }
    stack.push({ name: part, node });
  }
  return {
    node: current(),
    path: `/${stack.map((s) => s.name).join("/")}`,
    name: stack[stack.length - 1]?.name ?? "",
  };
}
