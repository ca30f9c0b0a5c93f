/**
 * FAT12/16/32 reader (blkid calls all three "vfat"). Names: VFAT long names
 * when their checksum matches, else the 8.3 name with Windows' lowercase
 * flags. Times are the last-write time read as UTC. FAT has no owners or
 * permissions: files show as 0644 (0444 when read-only), directories 0755,
 * owned by 0:0.
 */
import { CorruptImageError } from "../../errors.js";
import type { BlockSource } from "../../io/block-source.js";
import { targetBuffer } from "../../io/bounds.js";
import { checkFileRange, type CopyPiece, copyPieces } from "../file-io.js";
import { findIgnoringCase } from "../lookup.js";
import type { FileExtent, FileSystem, FsDirEntry, FsNode, FsRegion, FsStat } from "../types.js";
import { type BootSector, decodeBootSector } from "./boot-sector.js";
import { ATTR_DIRECTORY, ATTR_READ_ONLY, dosTimeToUnix, type ShortEntry } from "./dir-entry.js";
import { decodeDirectory } from "./directory.js";
import { type ClusterRun, FatTable } from "./fat-table.js";

/** FAT directories hold at most 65536 entries (Linux and Windows stop there too). */
const MAX_DIR_BYTES = 65536 * 32;

export interface FatNode extends FsNode {
  /** First cluster; 0 for the FAT12/16 root (a fixed region) and for empty files. */
  readonly cluster: number;
  readonly isRoot: boolean;
  /** For messages: the path. */
  readonly path: string;
  runs?: ClusterRun[];
}

export class FatFileSystem implements FileSystem<FatNode> {
  readonly type = "vfat";
  label: string | null = null;
  private readonly fat: FatTable;

  private constructor(
    private readonly source: BlockSource,
    readonly boot: BootSector,
  ) {
    this.fat = new FatTable(source, boot);
  }

  static async open(source: BlockSource): Promise<FatFileSystem> {
    if (source.size < 512) throw new CorruptImageError(`${source.name}: too small for a FAT filesystem`);
    const boot = decodeBootSector(await source.read(0, 512));
    const fs = new FatFileSystem(source, boot);
    const root = await fs.root();
    const { volumeLabel } = decodeDirectory(await fs.directoryBytes(root), boot.fatBits === 32);
    fs.label = volumeLabel ?? (boot.label && boot.label !== "NO NAME" ? boot.label : null);
    return fs;
  }

  get fatBits(): number {
    return this.boot.fatBits;
  }

  async root(): Promise<FatNode> {
    const stat: FsStat = { type: "dir", size: 0, mode: 0o755, mtime: 0, uid: 0, gid: 0, nlink: 1, id: this.boot.fatBits === 32 ? this.boot.rootCluster : 0 };
    return { stat, cluster: this.boot.fatBits === 32 ? this.boot.rootCluster : 0, isRoot: true, path: "/" };
  }

  private nodeFor(e: ShortEntry, path: string): FatNode {
    const isDir = (e.attr & ATTR_DIRECTORY) !== 0;
    const stat: FsStat = {
      type: isDir ? "dir" : "file",
      size: isDir ? 0 : e.size,
      mode: isDir ? 0o755 : e.attr & ATTR_READ_ONLY ? 0o444 : 0o644,
      mtime: dosTimeToUnix(e.writeDate, e.writeTime),
      uid: 0,
      gid: 0,
      nlink: 1,
      // FAT has no hard links. A directory is its first cluster: a subdirectory
      // pointing back at an ancestor's cluster is a cycle the walker must see.
      id: isDir ? e.firstCluster : null,
    };
    return { stat, cluster: e.firstCluster, isRoot: false, path };
  }

  private async runs(node: FatNode, clusters: number): Promise<ClusterRun[]> {
    node.runs ??= await this.fat.chain(node.cluster, Math.min(clusters, this.boot.clusterCount), node.path);
    return node.runs;
  }

  private async readRuns(runs: ClusterRun[], offset: number, out: Buffer, what: string): Promise<void> {
    const cs = this.boot.clusterSize;
    let pos = 0; // byte position in the chain where the current run starts
    const end = offset + out.length;
    for (const run of runs) {
      const runEnd = pos + run.count * cs;
      if (runEnd > offset && pos < end) {
        const from = Math.max(offset, pos);
        const to = Math.min(end, runEnd);
        const disk = this.boot.dataOffset + (run.first - 2) * cs + (from - pos);
        await this.source.read(disk, to - from, out.subarray(from - offset, to - offset));
      }
      pos = runEnd;
      if (pos >= end) return;
    }
    throw new CorruptImageError(`FAT: ${what}: the cluster chain ends before byte ${end}`);
  }

  private directoryRuns(dir: FatNode): Promise<ClusterRun[]> {
    return this.runs(dir, Math.ceil(MAX_DIR_BYTES / this.boot.clusterSize));
  }

  private async directoryBytes(dir: FatNode): Promise<Buffer> {
    if (dir.isRoot && this.boot.fatBits !== 32) {
      return this.source.read(this.boot.rootDirOffset, this.boot.rootDirBytes);
    }
    if (dir.cluster === 0) return Buffer.alloc(0); // an empty directory without a cluster (corrupt but harmless)
    const runs = await this.directoryRuns(dir);
    const bytes = runs.reduce((n, r) => n + r.count, 0) * this.boot.clusterSize;
    const out = Buffer.allocUnsafe(bytes);
    await this.readRuns(runs, 0, out, dir.path);
    return out;
  }

  async *list(dir: FatNode): AsyncIterable<FsDirEntry<FatNode>> {
    yield* await this.entries(dir);
  }

  /** The whole listing at once, for lookup() and the listing cache. */
  private async entries(dir: FatNode): Promise<Array<FsDirEntry<FatNode>>> {
    if (dir.stat.type !== "dir") throw new CorruptImageError(`FAT: ${dir.path}: not a directory`);
    const { entries } = decodeDirectory(await this.directoryBytes(dir), this.boot.fatBits === 32);
    const base = dir.path === "/" ? "" : dir.path;
    return entries.map((e) => ({ name: e.name, node: this.nodeFor(e.short, `${base}/${e.name}`) }));
  }

  async lookup(dir: FatNode, name: string): Promise<FatNode | undefined> {
    return findIgnoringCase(await this.entries(dir), name);
  }

  async readlink(node: FatNode): Promise<string> {
    throw new CorruptImageError(`FAT: ${node.path}: FAT has no symbolic links`);
  }

  async read(node: FatNode, offset: number, length: number, into?: Buffer): Promise<Buffer> {
    const size = node.stat.size;
    if (node.stat.type !== "file") throw new CorruptImageError(`FAT: ${node.path}: not a regular file`);
    checkFileRange(`FAT: ${node.path}`, size, offset, length);
    const out = targetBuffer(length, into);
    if (length === 0) return out;
    if (node.cluster === 0) throw new CorruptImageError(`FAT: ${node.path}: ${size} bytes but no first cluster`);
    const runs = await this.runs(node, Math.ceil(size / this.boot.clusterSize));
    await this.readRuns(runs, offset, out, `${node.path} (${size} bytes)`);
    return out;
  }

  async copyTo(node: FatNode, offset: number, length: number, fd: number): Promise<boolean> {
    const source = this.source;
    const size = node.stat.size;
    if (!source.copyTo || node.stat.type !== "file" || node.cluster === 0 || length === 0) return false;
    checkFileRange(`FAT: ${node.path}`, size, offset, length);
    const cs = this.boot.clusterSize;
    const runs = await this.runs(node, Math.ceil(size / cs));
    const end = offset + length;
    const pieces: CopyPiece[] = [];
    let pos = 0;
    for (const run of runs) {
      const runEnd = pos + run.count * cs;
      if (runEnd > offset && pos < end) {
        const from = Math.max(offset, pos);
        pieces.push([this.boot.dataOffset + (run.first - 2) * cs + (from - pos), from, Math.min(end, runEnd) - from]);
      }
      pos = runEnd;
    }
    if (pos < end) return false; // a short chain: let read() report it
    return copyPieces(source, pieces, fd, `FAT: ${node.path}`);
  }

  /** A file's or directory's clusters; the FAT12/16 root is its fixed region. */
  async *extents(node: FatNode): AsyncGenerator<FileExtent> {
    const { boot } = this;
    if (node.isRoot && boot.fatBits !== 32) {
      yield { fileOffset: 0, length: boot.rootDirBytes, fsOffset: boot.rootDirOffset, fsLength: boot.rootDirBytes };
      return;
    }
    if (node.cluster === 0) return;
    const isDir = node.stat.type === "dir";
    const size = isDir ? Infinity : node.stat.size;
    const runs = isDir ? await this.directoryRuns(node) : await this.runs(node, Math.ceil(size / boot.clusterSize));
    let fileOffset = 0;
    for (const run of runs) {
      const length = Math.min(run.count * boot.clusterSize, size - fileOffset);
      if (length <= 0) return;
      yield { fileOffset, length, fsOffset: boot.dataOffset + (run.first - 2) * boot.clusterSize, fsLength: length };
      fileOffset += length;
    }
  }

  /** The boot sector and reserved sectors, and each copy of the FAT. */
  async *regions(): AsyncGenerator<FsRegion> {
    const { bytesPerSector, reservedSectors, numFats, fatSize } = this.boot;
    yield { what: "boot sector and reserved sectors", fsOffset: 0, length: reservedSectors * bytesPerSector };
    for (let i = 0; i < numFats; i++) {
      yield { what: `FAT ${i + 1} of ${numFats}`, fsOffset: (reservedSectors + i * fatSize) * bytesPerSector, length: fatSize * bytesPerSector };
    }
  }

  async close(): Promise<void> {}
}

export function openFat(source: BlockSource): Promise<FatFileSystem> {
  return FatFileSystem.open(source);
}
