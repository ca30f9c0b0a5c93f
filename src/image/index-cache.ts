/**
 * Indexes that took a full pass to build (the access points of a gzip
 * stream, the frames of a zstd file without a seek table) are kept under
 * $XDG_CACHE_HOME/platter (~/.cache/platter), never next to the image, so a
 * second command on the same image starts at once. An entry is keyed by the
 * image's real path, size, mtime and inode, and by the layers above the one
 * asking: a changed image misses, never reads a stale index.
 */
import { homedir } from "node:os";
import { join } from "node:path";
import type { IndexCache } from "../container/format.js";
import type { FileSource } from "../io/file-source.js";

/** An index larger than this is not worth a file (and is no index). */
const MAX_ENTRY = 64 << 20;

export function cacheFolder(): string {
  const base = process.env.XDG_CACHE_HOME || join(homedir(), ".cache");
  return join(base, "platter");
}

export class DiskIndexCache implements IndexCache {
  private key: Promise<string | undefined> | undefined;

  constructor(
    /** The image's real path; a split image's pieces, in order. */
    private readonly realPaths: readonly string[],
    private readonly file: Pick<FileSource, "isBlockDevice">,
    /** Formats of the layers above the one using this cache: "zstd/qcow2". */
    private readonly above: readonly string[],
  ) {}

  /** Block devices change under us without an mtime: they get no cache. */
  private identity(): Promise<string | undefined> {
    this.key ??= this.computeIdentity();
    return this.key;
  }

  private async computeIdentity(): Promise<string | undefined> {
    // node:fs/promises and node:crypto cost start-up time; only an image with a cached index needs them.
    const { stat } = await import("node:fs/promises");
    let stats;
    try {
      stats = await Promise.all(this.realPaths.map((path) => stat(path)));
    } catch {
      return undefined;
    }
    if (!stats.every((st) => st.isFile()) || this.file.isBlockDevice) return undefined;
    const { createHash } = await import("node:crypto");
    return createHash("sha256")
      .update(JSON.stringify([...stats.flatMap((st, i) => [this.realPaths[i], st.size, st.mtimeMs, st.ino, st.dev]), this.above]))
      .digest("hex")
      .slice(0, 32);
  }

  private async entryPath(name: string): Promise<string | undefined> {
    const id = await this.identity();
    return id ? join(cacheFolder(), `${id}.${name.replace(/[^\w.-]/g, "_")}`) : undefined;
  }

  async load(name: string): Promise<Buffer | undefined> {
    const path = await this.entryPath(name);
    if (!path) return undefined;
    const { readFile, stat } = await import("node:fs/promises");
    try {
      const st = await stat(path);
      if (st.size > MAX_ENTRY) return undefined;
      return await readFile(path);
    } catch {
      return undefined;
    }
  }

  /** Best effort: a cache that cannot be written (read-only home, full disk) is only slower. */
  async save(name: string, data: Buffer): Promise<void> {
    if (data.length > MAX_ENTRY) return;
    const path = await this.entryPath(name);
    if (!path) return;
    const temp = `${path}.${process.pid}.tmp`;
    const { mkdir, rename, writeFile } = await import("node:fs/promises");
    try {
      await mkdir(cacheFolder(), { recursive: true, mode: 0o700 });
      await writeFile(temp, data, { mode: 0o600 });
      await rename(temp, path);
    } catch {
      // Not cached this time.
    }
  }
}
