/**
 * The first pass: walk the tree once without writing anything, to count what
 * progress measures against, and so that a corrupt tree (a cycle, a folder
 * that cannot be read) fails before anything is written. It remembers only
 * the hard-linked files whose other names it has not met yet.
 */
import type { FileSystem, FsNode } from "../types.js";
import { walk, type ListOptions } from "../walk.js";

export interface Totals {
  files: number;
  /** Bytes of distinct files: a second hard link costs nothing, and holes count as their file does. */
  bytes: number;
}

/** Counts `start` (a folder: what is below it); stops early, with partial counts, when `signal` fires. */
export async function surveyTree<N extends FsNode>(
  fs: FileSystem<N>,
  start: { node: N; path: string },
  options: ListOptions & { signal?: AbortSignal } = {},
): Promise<Totals> {
  const totals: Totals = { files: 0, bytes: 0 };
  if (start.node.stat.type !== "dir") {
    if (start.node.stat.type === "file") Object.assign(totals, { files: 1, bytes: start.node.stat.size });
    return totals;
  }
  const unseenLinks = new Map<number | string, number>();
  for await (const { node } of walk(fs, start.node, start.path, options)) {
    if (options.signal?.aborted) break;
    const st = node.stat;
    if (st.type !== "file") continue;
    totals.files++;
    if (st.nlink > 1 && st.id !== null) {
      const unseen = unseenLinks.get(st.id);
      if (unseen !== undefined) {
        if (unseen > 1) unseenLinks.set(st.id, unseen - 1);
        else unseenLinks.delete(st.id);
        continue;
      }
      unseenLinks.set(st.id, st.nlink - 1);
    }
    totals.bytes += st.size;
  }
  return totals;
}
