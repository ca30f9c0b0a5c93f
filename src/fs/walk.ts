/**
 * Depth-first walk of a directory tree, entries sorted by name. A directory
 * reached twice (a cycle, or a corrupt image linking one directory from two
 * places) ends the walk with a CorruptImageError instead of looping forever.
 */
import { CorruptImageError } from "../errors.js";
import type { FileSystem, FsNode } from "./types.js";

/** Deeper than any real tree; a backstop for readers whose directories have no identity. */
export const MAX_DEPTH = 2048;

export interface WalkEntry<N extends FsNode> {
  /** "/dir/name" inside the filesystem. */
  path: string;
  name: string;
  node: N;
  /** Names from the walk's start to this entry: ["dir", "name"]. */
  parts: string[];
}

export function byName<T extends { name: string }>(a: T, b: T): number {
  return a.name < b.name ? -1 : a.name > b.name ? 1 : 0;
}

export function joinPath(dir: string, name: string): string {
  return dir === "/" ? `/${name}` : `${dir}/${name}`;
}

/** Every entry below `start` (not `start` itself), parents before children. */
export async function* walk<N extends FsNode>(fs: FileSystem<N>, start: N, startPath: string): AsyncGenerator<WalkEntry<N>> {
  const visited = new Set<number | string>();
  if (start.stat.id !== null) visited.add(start.stat.id);
  async function* below(dir: N, path: string, parts: string[]): AsyncGenerator<WalkEntry<N>> {
    if (parts.length > MAX_DEPTH) throw new CorruptImageError(`${path}: directory tree deeper than ${MAX_DEPTH} levels`);
    const entries = [...(await fs.list(dir))].sort(byName);
    for (const { name, node } of entries) {
      const entry: WalkEntry<N> = { path: joinPath(path, name), name, node, parts: [...parts, name] };
      yield entry;
      if (node.stat.type === "dir") {
        const id = node.stat.id;
        if (id !== null) {
          if (visited.has(id)) throw new CorruptImageError(`${entry.path}: directory cycle (this directory is reached twice)`);
          visited.add(id);
        }
        yield* below(node, entry.path, entry.parts);
      }
    }
  }
  yield* below(start, startPath, []);
}
