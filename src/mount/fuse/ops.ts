/**
 * The FUSE operations over a served tree (a filesystem's files, or the raw
 * disk and its partitions): open files keep their handle, so a read at any
 * offset goes straight to the reader with no path lookup; every failure
 * becomes the errno a real filesystem would give; anything that would
 * write is refused with EROFS (the mount is read-only).
 */
import { constants } from "node:fs";
import type { FuseOps, FuseStat, FuseStatfs } from "./binding.js";
import { LruCache } from "../../util/lru.js";
import { errnoFor, FuseErrno } from "./errno.js";

export interface ServedTree<Handle> {
  stat(path: string): Promise<FuseStat>;
  /** Names in the directory, without "." and "..". */
  list(path: string): Promise<string[]>;
  readlink(path: string): Promise<string>;
  /** A handle for reading a regular file. */
  open(path: string): Promise<Handle>;
  /** Fill `into` from `offset`; fewer bytes only at the end of the file. */
  read(handle: Handle, offset: number, into: Buffer): Promise<number>;
  statfs(): FuseStatfs;
}

const ACCESS_MODE = 3; // O_ACCMODE

/**
 * Open files remembered at once. There is no release operation: each call
 * into JavaScript is two thread hand-overs, and a close needs none. A file
 * whose handle was pushed out (more files open than this) is found again by
 * its path.
 */
const OPEN_HANDLES = 4096;

export function fuseOps<Handle>(tree: ServedTree<Handle>, onError: (op: string, path: string, err: unknown) => void): FuseOps {
  const handles = new LruCache<number, Handle>(OPEN_HANDLES);
  let nextHandle = 1;

  /** Run `work`, replying with its value or with the errno of what it threw. */
  function reply<T>(op: string, path: string, work: () => Promise<T>, done: (err: number, value?: T) => void): void {
    work().then(
      (value) => done(0, value),
      (err: unknown) => {
        if (!(err instanceof FuseErrno)) onError(op, path, err);
        done(errnoFor(err));
      },
    );
  }

  return {
    init: (cb) => cb(0),
    getattr: (path, cb) => reply("stat", path, () => tree.stat(path), cb),
    readdir: (path, cb) => reply("list", path, async () => [".", "..", ...(await tree.list(path))], cb),
    readlink: (path, cb) => reply("readlink", path, () => tree.readlink(path), cb),
    open: (path, flags, cb) =>
      reply(
        "open",
        path,
        async () => {
          if ((flags & ACCESS_MODE) !== constants.O_RDONLY || flags & constants.O_TRUNC) throw new FuseErrno("EROFS");
          const number = nextHandle++;
          handles.set(number, await tree.open(path));
          return number;
        },
        cb,
      ),
    read: (path, fd, buf, len, pos, cb) =>
      reply(
        "read",
        path,
        async () => tree.read(handles.get(fd) ?? handles.set(fd, await tree.open(path)), pos, buf.subarray(0, len)),
        (err, n) => cb(err < 0 ? err : (n ?? 0)),
      ),
    statfs: (_path, cb) => cb(0, tree.statfs()),
  };
}
