/**
 * What a FUSE reply says when an operation fails: a negative errno. The
 * kernel hands it to the reading process as is, so it must be the one a
 * real filesystem would give (ENOENT for a missing name, EIO for a bad
 * sector or a corrupt structure).
 */
import { constants } from "node:os";
import { DeviceError } from "../../errors.js";

const ERRNO = constants.errno as Record<string, number>;

/** A failure that already is an errno: a missing name, a write to a read-only mount. */
export class FuseErrno extends Error {
  constructor(readonly code: "ENOENT" | "ENOTDIR" | "EISDIR" | "EROFS" | "EINVAL") {
    super(code);
  }
}

/** The negative errno for anything a reader threw. */
export function errnoFor(err: unknown): number {
  if (err instanceof FuseErrno) return -ERRNO[err.code];
  if (err instanceof DeviceError && err.code && ERRNO[err.code]) return -ERRNO[err.code];
  return -ERRNO.EIO;
}
