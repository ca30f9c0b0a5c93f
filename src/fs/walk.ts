/**
 * Depth-first walk of a directory tree, entries sorted by name. A directory
 * reached twice (a cycle, or a corrupt image linking one directory from two
 * places) ends the walk with a CorruptImageError instead of looping forever.
 *
 * Sorting needs the whole listing in memory, and a directory may hold
 * millions of names (a crafted squashfs packs a million into 72 KiB). So the
 * entries held for sorting, across every directory open on the walk's path,
 * stay under a budget; a directory that would pass it is given in the order
 * it is stored (as `ls -U` does), with a warning, and memory stays bounded.
 */
import { CorruptImageError, PlatterError } from "../errors.js";
import { escapeName } from "./names.js";
import type { FileSystem, FsDirEntry, FsNode } from "./types.js";

/** Deeper than any real tree; a backstop for readers whose directories have no identity. */
export const MAX_DEPTH = 2048;
/**
 * Entries held for sorting at once: some 10 to 25 MiB of names and nodes, which
 * the garbage collector's slack multiplies; a million-name folder then lists
 * in well under 200 MiB.
 */
export const SORT_BUDGET = 50_000;

export interface WalkEntry<N extends FsNode> {
  /** "/dir/name" inside the filesystem. */
  path: string;
  name: string;
  node: N;
  /** Names from the walk's start to this entry: ["dir", "name"]. */
  parts: string[];
}

export interface ListOptions {
  /** Told when a directory is too large to sort and comes in stored order. */
  onWarning?: (message: string) => void;
}

export function byName<T extends { name: string }>(a: T, b: T): number {
  return a.name < b.name ? -1 : a.name > b.name ? 1 : 0;
}

export function joinPath(dir: string, name: string): string {
  return dir === "/" ? `/${name}` : `${dir}/${name}`;
}

/** Every entry of a small directory, as an array (tests, lookups); use sortedList() where a directory may be huge. */
export async function listAll<N extends FsNode>(fs: FileSystem<N>, dir: N): Promise<Array<FsDirEntry<N>>> {
  const out: Array<FsDirEntry<N>> = [];
  for await (const entry of fs.list(dir)) out.push(entry);
  return out;
}

/** Entries held for sorting by every sortedList() in progress, against SORT_BUDGET. */
class SortBudget {
  held = 0;
}

/**
 * A directory's entries sorted by name when they fit the budget, else in
 * stored order (warned about). `budget` is shared by the listings a walk has
 * open at once.
 */
export async function* sortedList<N extends FsNode>(
  fs: FileSystem<N>,
  dir: N,
  path: string,
  options: ListOptions = {},
  budget = new SortBudget(),
): AsyncGenerator<FsDirEntry<N>> {
  const iterator = fs.list(dir)[Symbol.asyncIterator]();
  const held: Array<FsDirEntry<N>> = [];
  let complete = false;
  try {
    for (;;) {
      if (budget.held >= SORT_BUDGET) break;
      const next = await iterator.next();
      if (next.done) {
        complete = true;
        break;
      }
      held.push(next.value);
      budget.held++;
    }
    if (complete) {
      yield* held.sort(byName);
      return;
    }
    options.onWarning?.(`${escapeName(path)}: more than ${held.length} entries; listed in the order they are stored, not sorted`);
    yield* held;
    for (;;) {
      const next = await iterator.next();
      if (next.done) return;
      yield next.value;
    }
  } finally {
    budget.held -= held.length;
    await iterator.return?.();
  }
}

export interface WalkOptions extends ListOptions {
  /**
   * Told of a directory that cannot be read (damaged, past the end of a
   * truncated image): the walk then goes on without what is below it. Without
   * it, the error ends the walk.
   */
  onUnreadable?: (path: string, error: PlatterError) => void;
}

/** Every entry below `start` (not `start` itself), parents before children. */
export async function* walk<N extends FsNode>(
  fs: FileSystem<N>,
  start: N,
  startPath: string,
  options: WalkOptions = {},
): AsyncGenerator<WalkEntry<N>> {
  const visited = new Set<number | string>();
  const budget = new SortBudget();
  if (start.stat.id !== null) visited.add(start.stat.id);
  async function* below(dir: N, path: string, parts: string[]): AsyncGenerator<WalkEntry<N>> {
    if (parts.length > MAX_DEPTH) throw new CorruptImageError(`${escapeName(path)}: directory tree deeper than ${MAX_DEPTH} levels`);
    const entries = sortedList(fs, dir, path, options, budget);
    try {
      for (;;) {
        let next: IteratorResult<FsDirEntry<N>>;
        try {
          next = await entries.next();
        } catch (err) {
          if (!options.onUnreadable || !(err instanceof PlatterError)) throw err;
          options.onUnreadable(path, err);
          return;
        }
        if (next.done) return;
        const { name, node } = next.value;
        const entry: WalkEntry<N> = { path: joinPath(path, name), name, node, parts: [...parts, name] };
        yield entry;
        if (node.stat.type !== "dir") continue;
        const id = node.stat.id;
        if (id !== null) {
          if (visited.has(id)) {
            const cycle = new CorruptImageError(`${escapeName(entry.path)}: directory cycle (this directory is reached twice)`);
            if (!options.onUnreadable) throw cycle;
            options.onUnreadable(entry.path, cycle);
            continue;
          }
          visited.add(id);
        }
        yield* below(node, entry.path, entry.parts);
      }
    } finally {
      await entries.return(undefined);
    }
  }
  yield* below(start, startPath, []);
}
