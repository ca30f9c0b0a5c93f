/**
 * The safe extractor: copy a tree out of a filesystem into a folder.
 *
 * Whatever the image says, nothing is written outside the folder:
 * - names are made safe first (no "/", NUL, "." or ".."; at most 255 bytes),
 *   and written with the image's own bytes, UTF-8 or not;
 * - every path written to is below folders this run made, or found with
 *   lstat to be real folders; and every entry is created exclusively without
 *   following links (O_EXCL | O_NOFOLLOW, mkdir, symlink, link), so nothing
 *   existing is followed or overwritten by accident, and no write ever goes
 *   through a symbolic link, wherever it points;
 * - a folder's symbolic links are made after its other entries, so a file or
 *   folder, not a link, keeps a name they share;
 * - a name that clashes with one already extracted (duplicate entries, or
 *   names equal but for case on a case-insensitive target) gets a "~N"
 *   suffix and a warning (folder.ts).
 * Modes, mtimes, symlinks, hard links, FIFOs and (as root) devices are kept,
 * owners too as root; sparse files are written sparse; a folder gets its mode
 * and mtime when it is finished.
 *
 * Memory does not grow with the tree: the walk streams, and the extractor
 * remembers only the open folders, hard-linked files whose other names are
 * still to come, and (up to a budget) symbolic links waiting for their folder.
 */
import type { FileSystem, FsNode } from "../types.js";
import { prepareDestination } from "./destination.js";
import { Extraction } from "./extraction.js";
import { surveyTree } from "./survey.js";
import type { ExtractProgress } from "./write-file.js";

export type { ExtractProgress } from "./write-file.js";

export interface ExtractOptions {
  /** Extract into a folder that is not empty, replacing files (never following links) in the way. */
  force?: boolean;
  /** Keep owners (uid/gid); default: when running as root. */
  owners?: boolean;
  onProgress?: (p: ExtractProgress) => void;
  /** Entries renamed or skipped, with why. */
  onWarning?: (message: string) => void;
  /** Stop early (Ctrl-C): files being written are removed, what is complete stays. */
  signal?: AbortSignal;
}

export interface ExtractSummary {
  files: number;
  dirs: number;
  symlinks: number;
  hardlinks: number;
  /** FIFOs and device nodes made. */
  specials: number;
  skipped: number;
  /** Bytes of the files written (a name made as a hard link adds none). */
  bytes: number;
  /** Stopped by the signal before the end. */
  interrupted: boolean;
}

/**
 * Extract `start` (a directory: its contents; anything else: itself) into
 * the folder `dest`, which is created if missing and must be empty unless
 * `force`.
 */
export async function extractTree<N extends FsNode>(
  fs: FileSystem<N>,
  start: { node: N; path: string; name: string },
  dest: string,
  options: ExtractOptions = {},
): Promise<ExtractSummary> {
  const destination = await prepareDestination(dest, Boolean(options.force));
  const totals = await surveyTree(fs, start, { onWarning: options.onWarning, signal: options.signal });
  return new Extraction(fs, destination, totals, options).run(start);
}

