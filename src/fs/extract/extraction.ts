/**
 * One extraction, after the survey: the second walk, creating each entry as
 * it comes, in walk order (names are decided in that order, so a clash
 * always resolves the same way), while file contents are copied beside it.
 */
import { promises as fsp } from "node:fs";
import { errnoCode, ioError } from "../../errors.js";
import { escapeName, nameBytes } from "../names.js";
import type { FileSystem, FsNode, FsStat } from "../types.js";
import { SORT_BUDGET, walk } from "../walk.js";
import { shown } from "./disk-path.js";
import type { Destination } from "./destination.js";
import { type DeferredSymlink, Folder, type FolderContext } from "./folder.js";
import type { ExtractOptions, ExtractSummary } from "./index.js";
import { cannotMake, makeNodeAside, SpecialFileError } from "./special.js";
import type { Totals } from "./survey.js";
import { TaskPool } from "./task-pool.js";
import { asDate, BufferPool, createFile, type ExtractProgress, FileCopy, type WriteContext } from "./write-file.js";

/** Files copied side by side: the work is mostly waiting on system calls. */
const FILES_IN_FLIGHT = 8;
/** Symbolic links held back for their folder at once; past this (a folder too large to sort anyway) they are made in walk order. */
const DEFERRED_SYMLINKS = SORT_BUDGET;

/** What a target filesystem without symlinks or hard links (FAT, exFAT) answers. */
const CANNOT_HOLD = new Set(["ENOSYS", "EPERM", "EOPNOTSUPP", "ENOTSUP", "EMLINK"]);

const isRoot = typeof process.getuid === "function" && process.getuid() === 0;

const SPECIAL_KIND: Partial<Record<FsStat["type"], string>> = {
  char: "character device",
  block: "block device",
  fifo: "fifo",
  socket: "socket",
};

interface LinkedFile {
  path: Buffer;
  copy: FileCopy;
  /** Names of this file the walk has still to meet. */
  unseen: number;
}

export class Extraction<N extends FsNode> {
  private readonly summary: ExtractSummary = { files: 0, dirs: 0, symlinks: 0, hardlinks: 0, specials: 0, skipped: 0, bytes: 0, interrupted: false };
  private readonly progress: ExtractProgress;
  private readonly pool = new TaskPool(FILES_IN_FLIGHT);
  private readonly writing: WriteContext;
  private readonly folders: FolderContext;
  private readonly owners: boolean;
  private readonly warn: (message: string) => void;
  /** Hard-linked files by node id, until their last name is made. */
  private readonly links = new Map<number | string, LinkedFile>();
  private deferred = 0;

  constructor(
    private readonly fs: FileSystem<N>,
    private readonly destination: Destination,
    totals: Totals,
    private readonly options: ExtractOptions,
  ) {
    this.owners = options.owners ?? isRoot;
    this.warn = options.onWarning ?? (() => {});
    this.progress = { files: 0, totalFiles: totals.files, bytes: 0, totalBytes: totals.bytes };
    this.writing = {
      owners: this.owners,
      inheritsGroup: destination.inheritsGroup,
      buffers: new BufferPool(),
      progress: this.progress,
      onProgress: options.onProgress,
      signal: options.signal,
    };
    this.folders = { force: Boolean(options.force), owners: this.owners, warn: this.warn };
  }

  async run(start: { node: N; path: string; name: string }): Promise<ExtractSummary> {
    let failure: { error: unknown } | undefined;
    try {
      await this.extractAll(start);
    } catch (error) {
      failure = { error };
    }
    try {
      await this.pool.drain();
    } catch (error) {
      failure ??= { error };
    }
    if (this.options.signal?.aborted) {
      this.summary.interrupted = true;
      return this.summary;
    }
    if (failure) throw failure.error;
    this.options.onProgress?.(this.progress);
    return this.summary;
  }

  private async extractAll(start: { node: N; path: string; name: string }): Promise<void> {
    const signal = this.options.signal;
    const stack = [new Folder(this.destination.path, undefined, this.destination.heldEntries, this.folders)];
    if (signal?.aborted) return;
    if (start.node.stat.type !== "dir") {
      await this.extractEntry(stack, start.name || "file", start.node, start.path);
    } else {
      // Depth-first, parents first: the folders open on the walk's path are a stack, and an
      // entry's parent is found by its depth, never by joining names (a hostile one may hold a "/").
      for await (const e of walk(this.fs, start.node, start.path)) {
        if (signal?.aborted) return;
        this.pool.throwIfFailed();
        while (stack.length > e.parts.length) await this.leave(stack.pop() as Folder);
        const folder = await this.extractEntry(stack, e.name, e.node, e.path);
        if (folder) stack.push(folder);
      }
    }
    while (stack.length > 0) await this.leave(stack.pop() as Folder);
  }

  /** Extract one entry into the innermost folder of `stack`; a folder made is returned, to be filled next. */
  private async extractEntry(stack: Folder[], name: string, node: N, imagePath: string): Promise<Folder | undefined> {
    const folder = stack[stack.length - 1];
    const st = node.stat;
    switch (st.type) {
      case "dir": {
        const placed = await folder.place(name, imagePath, true, (path) => fsp.mkdir(path, 0o700));
        this.summary.dirs++;
        return new Folder(placed.path, st, placed.reused, this.folders);
      }
      case "file": {
        const linkId = st.nlink > 1 ? st.id : null;
        const first = linkId === null ? undefined : this.links.get(linkId);
        if (first) await this.extractHardLink(stack, name, node, imagePath, linkId as number | string, first);
        else await this.extractFile(stack, name, node, imagePath, linkId);
        return undefined;
      }
      case "symlink":
        await this.extractSymlink(folder, name, node, imagePath);
        return undefined;
      default:
        await this.extractSpecial(folder, name, st, imagePath);
        return undefined;
    }
  }

  /** Create the file now (its name is decided in walk order), copy its bytes beside the walk. */
  private async extractFile(stack: Folder[], name: string, node: N, imagePath: string, linkId: number | string | null): Promise<void> {
    await this.pool.ready();
    const folder = stack[stack.length - 1];
    const placed = await folder.place(name, imagePath, false, (path) => createFile(path, node.stat));
    const copy = new FileCopy(placed.made as number, placed.path);
    if (linkId !== null) this.links.set(linkId, { path: placed.path, copy, unseen: node.stat.nlink - 1 });
    const holders = [...stack];
    for (const f of holders) f.hold();
    this.pool.run(async () => {
      await copy.write(this.fs, node, this.writing);
      this.summary.bytes += node.stat.size;
      this.fileDone();
      for (let i = holders.length - 1; i >= 0; i--) await holders[i].release();
    });
  }

  private async extractHardLink(stack: Folder[], name: string, node: N, imagePath: string, linkId: number | string, first: LinkedFile): Promise<void> {
    this.summary.hardlinks++;
    if (--first.unseen === 0) this.links.delete(linkId);
    const folder = stack[stack.length - 1];
    try {
      const placed = await folder.place(name, imagePath, false, (path) => fsp.link(first.path, path));
      // If the first copy failed meanwhile, this name went with it, and the run is failing.
      if (await first.copy.adopt(placed.path)) this.fileDone();
    } catch (err) {
      if (!CANNOT_HOLD.has(errnoCode(err) ?? "")) throw err;
      this.warn(`${escapeName(imagePath)}: the target filesystem cannot hold hard links; extracted as a copy`);
      await this.extractFile(stack, name, node, imagePath, null);
    }
  }

  private async extractSymlink(folder: Folder, name: string, node: N, imagePath: string): Promise<void> {
    const target = await this.fs.readlink(node);
    if (target.includes("\0")) {
      this.warn(`${escapeName(imagePath)}: symlink target contains a NUL byte; not extracted`);
      this.summary.skipped++;
      return;
    }
    const link: DeferredSymlink = { name, imagePath, target, stat: node.stat };
    if (this.deferred >= DEFERRED_SYMLINKS) return this.makeSymlink(folder, link);
    folder.symlinks.push(link);
    this.deferred++;
  }

  private async makeSymlink(folder: Folder, link: DeferredSymlink): Promise<void> {
    let path: Buffer;
    try {
      path = (await folder.place(link.name, link.imagePath, false, (p) => fsp.symlink(nameBytes(link.target), p))).path;
    } catch (err) {
      if (!CANNOT_HOLD.has(errnoCode(err) ?? "")) throw err;
      this.warn(`${escapeName(link.imagePath)}: not extracted: the target filesystem cannot hold symbolic links`);
      this.summary.skipped++;
      return;
    }
    await this.setAttributes(path, link.stat);
    this.summary.symlinks++;
  }

  private async extractSpecial(folder: Folder, name: string, st: FsStat, imagePath: string): Promise<void> {
    const skip = (why: string) => {
      this.warn(`${escapeName(imagePath)}: ${SPECIAL_KIND[st.type]} not extracted: ${why}`);
      this.summary.skipped++;
    };
    const why = cannotMake(st);
    if (why) return skip(why);
    let aside: Buffer;
    try {
      aside = await makeNodeAside(folder.path, st);
    } catch (err) {
      if (err instanceof SpecialFileError) return skip(err.message);
      throw ioError(err, shown(folder.path));
    }
    try {
      const { path } = await folder.place(name, imagePath, false, (p) => fsp.link(aside, p));
      await this.setAttributes(path, st);
    } finally {
      await fsp.unlink(aside).catch(() => {});
    }
    this.summary.specials++;
  }

  /** Owner and mtime of an entry made by name (a link, a FIFO, a device), without following it. */
  private async setAttributes(path: Buffer, st: FsStat): Promise<void> {
    if (this.owners) await fsp.lchown(path, st.uid, st.gid).catch(() => {});
    await fsp.lutimes(path, asDate(st.mtime), asDate(st.mtime)).catch((e) => {
      throw ioError(e, shown(path));
    });
  }

  /** The walk has left `folder`: make its symbolic links, then it is finished once its files are written. */
  private async leave(folder: Folder): Promise<void> {
    for (const link of folder.symlinks) await this.makeSymlink(folder, link);
    this.deferred -= folder.symlinks.length;
    folder.symlinks.length = 0;
    await folder.leave();
  }

  private fileDone(): void {
    this.summary.files++;
    this.progress.files++;
    this.options.onProgress?.(this.progress);
  }
}
