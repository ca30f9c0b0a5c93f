/**
 * The reader boundary. A decoder fed a crafted image can trip over it in
 * ways its checks did not foresee: a RangeError from a Buffer read past a
 * structure, a TypeError from a field that was never there. Whatever a
 * reader throws that is not already a PlatterError leaves it as a
 * CorruptImageError naming the filesystem and the source, so the user sees
 * one line about a damaged image, not "internal error" (kept for platter's
 * own bugs outside the decoders) and never a stack trace.
 */
import { CorruptImageError, PlatterError } from "../errors.js";
import type { FileSystem, FsDirEntry, FsNode } from "./types.js";

export function asCorrupt(err: unknown, where: string): PlatterError {
  if (err instanceof PlatterError) return err;
  const why = err instanceof Error ? err.message : String(err);
  return new CorruptImageError(`${where}: a damaged structure (${why})`, { cause: err });
}

/** Run `open` (a reader's constructor) at the boundary. */
export async function guarded<T>(where: string, open: () => Promise<T>): Promise<T> {
  try {
    return await open();
  } catch (err) {
    throw asCorrupt(err, where);
  }
}

/** `fs` with every call's failure passed through asCorrupt(). */
export function guardFileSystem<N extends FsNode>(fs: FileSystem<N>, where: string): FileSystem<N> {
  const at = (what: string) => `${where}: ${fs.type} ${what}`;
  const call = async <T>(what: string, run: () => Promise<T>): Promise<T> => {
    try {
      return await run();
    } catch (err) {
      throw asCorrupt(err, at(what));
    }
  };
  /** A stream of `fs`, each step's failure passed through asCorrupt(). */
  async function* stream<T>(what: string, items: AsyncIterable<T>): AsyncGenerator<T> {
    const iterator = items[Symbol.asyncIterator]();
    try {
      for (;;) {
        const next = await call(what, () => iterator.next());
        if (next.done) return;
        yield next.value;
      }
    } finally {
      await iterator.return?.();
    }
  }
  const guardedFs: FileSystem<N> = {
    type: fs.type,
    get label() {
      return fs.label;
    },
    get warnings() {
      return fs.warnings;
    },
    root: () => call("root directory", () => fs.root()),
    list: (dir: N): AsyncIterable<FsDirEntry<N>> => stream("directory", fs.list(dir)),
    lookup: (dir, name) => call("directory lookup", () => fs.lookup(dir, name)),
    readlink: (node) => call("symbolic link", () => fs.readlink(node)),
    read: (node, offset, length, into) => call("file data", () => fs.read(node, offset, length, into)),
    close: () => fs.close(),
  };
  if (fs.copyTo) {
    const copyTo = fs.copyTo.bind(fs);
    guardedFs.copyTo = (node, offset, length, fd) => call("file data", () => copyTo(node, offset, length, fd));
  }
  if (fs.dataRanges) {
    const dataRanges = fs.dataRanges.bind(fs);
    guardedFs.dataRanges = (node) => call("file map", () => dataRanges(node));
  }
  if (fs.extents) {
    const extents = fs.extents.bind(fs);
    guardedFs.extents = (node) => stream("file map", extents(node));
  }
  if (fs.regions) {
    const regions = fs.regions.bind(fs);
    guardedFs.regions = () => stream("metadata", regions());
  }
  return guardedFs;
}
