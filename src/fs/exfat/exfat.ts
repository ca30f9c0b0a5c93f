/**
 * exFAT reader: boot region (checksum verified; the backup region is used
 * when the main one is damaged) -> FAT -> directory entry sets. Names are
 * matched case-insensitively by a simple Unicode upper-case fold, not the
 * volume's up-case table. The allocation bitmap and up-case table are not
 * needed to read files and are not read.
 */
import { CorruptImageError } from "../../errors.js";
import type { BlockSource } from "../../io/block-source.js";
import { checkFileRange } from "../file-io.js";
import { ListingCache } from "../listing-cache.js";
import { escapeName } from "../names.js";
import type { FileExtent, FileSystem, FsDirEntry, FsNode, FsRegion, FsStat } from "../types.js";
import { BOOT_REGION_SECTORS, type BootSector, checkBootChecksum, decodeBootSector, VOLUME_FLAG_ACTIVE_FAT } from "./boot-sector.js";
import { Attribute, decodeFileEntrySet, decodeVolumeLabel, ENTRY_SIZE, EntryType, type FileEntrySet } from "./dir-entry.js";
import { type ClusterRun, FatReader } from "./fat.js";
import { decodeTimestamp } from "./timestamp.js";
import { findIgnoringCase } from "../lookup.js";

/** The largest directory exFAT allows (256 MiB); anything bigger is corrupt. */
const MAX_DIR_BYTES = 256 * 1024 * 1024;
/** Directories are read this much at a time (a multiple of the 32-byte entry). */
const DIR_CHUNK = 64 * 1024;

export interface ExfatNode extends FsNode {
  readonly stat: FsStat;
  /** Undefined for the root directory, which has no entry set. */
  readonly entry: FileEntrySet | undefined;
  readonly attributes: number;
  /** Where the file's bytes are, computed on first use. */
  runs?: ClusterRun[];
}

export class ExfatFileSystem implements FileSystem<ExfatNode> {
  readonly type = "exfat";
  label: string | null = null;
  private readonly fat: FatReader;
  private readonly clusterSize: number;
  private readonly heapStart: number;
  private readonly listings = new ListingCache<string, FsDirEntry<ExfatNode>>();
  private rootNode: ExfatNode | undefined;

  private constructor(
    private readonly source: BlockSource,
    readonly boot: BootSector,
  ) {
    const bps = boot.bytesPerSector;
    this.clusterSize = bps * boot.sectorsPerCluster;
    this.heapStart = boot.clusterHeapOffset * bps;
    const activeFat = boot.fatCount === 2 && boot.volumeFlags & VOLUME_FLAG_ACTIVE_FAT ? 1 : 0;
    this.fat = new FatReader(source, (boot.fatOffset + activeFat * boot.fatLength) * bps, boot.clusterCount);
  }

  /** Decode and verify one boot region (main at sector 0, backup at 12). */
  private static async bootRegion(source: BlockSource, firstSector: number): Promise<BootSector> {
    const first = await source.read(0, 512);
    const bps = 1 << Math.min(Math.max(first[108] as number, 9), 12);
    const region = await source.read(firstSector * bps, BOOT_REGION_SECTORS * bps);
    const boot = decodeBootSector(region);
    if (boot.bytesPerSector !== bps) throw new CorruptImageError("exFAT: the boot regions disagree on the sector size");
    checkBootChecksum(region, bps);
    return boot;
  }

  static async open(source: BlockSource): Promise<ExfatFileSystem> {
    if (source.size < 24 * 512) throw new CorruptImageError(`${source.name}: ${source.size} bytes is too small for exFAT`);
    let boot: BootSector;
    try {
      boot = await ExfatFileSystem.bootRegion(source, 0);
    } catch (mainError) {
      if (!(mainError instanceof CorruptImageError)) throw mainError;
      // The backup region exists for exactly this; if it is bad too, report the main region's fault.
      boot = await ExfatFileSystem.bootRegion(source, BOOT_REGION_SECTORS).catch(() => {
        throw mainError;
      });
    }
    const heapEnd = (boot.clusterHeapOffset + boot.clusterCount * boot.sectorsPerCluster) * boot.bytesPerSector;
    if (heapEnd > source.size) {
      throw new CorruptImageError(`${source.name}: exFAT's cluster heap ends at ${heapEnd} but the image holds ${source.size} bytes; it is truncated`);
    }
    const fs = new ExfatFileSystem(source, boot);
    // The label is an entry of the root (usually its first): stop there, not at the end of a huge root.
    for await (const item of fs.entrySets(await fs.root())) {
      if ("label" in item) {
        fs.label = item.label;
        break;
      }
    }
    return fs;
  }

  async root(): Promise<ExfatNode> {
    if (!this.rootNode) {
      const runs = await this.fat.chain(this.boot.rootCluster, undefined, "root directory");
      const size = runs.reduce((n, r) => n + r.count, 0) * this.clusterSize;
      const stat: FsStat = { type: "dir", size, mode: 0o755, mtime: 0, uid: 0, gid: 0, nlink: 1, id: `cluster:${this.boot.rootCluster}` };
      this.rootNode = { stat, entry: undefined, attributes: Attribute.directory, runs };
    }
    return this.rootNode;
  }

  /** The runs of a node's clusters: from the FAT, or contiguous when NoFatChain says so. */
  private async runsOf(node: ExfatNode): Promise<ClusterRun[]> {
    if (node.runs) return node.runs;
    const entry = node.entry as FileEntrySet;
    const clusters = Math.ceil(entry.dataLength / this.clusterSize);
    if (clusters > this.boot.clusterCount) {
      throw new CorruptImageError(`exFAT "${entry.name}": DataLength ${entry.dataLength} is larger than the volume`);
    }
    node.runs = entry.noFatChain
      ? this.fat.contiguous(entry.firstCluster, clusters, `"${entry.name}"`)
      : await this.fat.chain(entry.firstCluster, clusters, `"${entry.name}"`);
    return node.runs;
  }

  /** Bytes [offset, offset+length) of a node's clusters (no size or zero-fill logic). */
  private async readClusters(node: ExfatNode, offset: number, length: number): Promise<Buffer> {
    const runs = await this.runsOf(node);
    const out = Buffer.alloc(length);
    const cs = this.clusterSize;
    let done = 0;
    // Runs are in file order; find the first one that reaches `offset`.
    let lo = 0;
    let hi = runs.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if ((runs[mid] as ClusterRun).fileCluster * cs <= offset) lo = mid;
      else hi = mid - 1;
    }
    for (let i = lo; i < runs.length && done < length; i++) {
      const run = runs[i] as ClusterRun;
      const runStart = run.fileCluster * cs;
      const runEnd = runStart + run.count * cs;
      const from = offset + done;
      if (from >= runEnd) continue;
      const take = Math.min(runEnd - from, length - done);
      const disk = this.heapStart + (run.cluster - 2) * cs + (from - runStart);
      await this.source.read(disk, take, out.subarray(done, done + take));
      done += take;
    }
    if (done < length) throw new CorruptImageError("exFAT: a read ran past the clusters of its file");
    return out;
  }

  private nodeFor(entry: FileEntrySet): ExfatNode {
    const isDir = (entry.attributes & Attribute.directory) !== 0;
    // exFAT keeps no permissions: 0755/0644 as Linux shows them with its default umask, minus write for read-only files.
    const mode = isDir ? 0o755 : entry.attributes & Attribute.readOnly ? 0o444 : 0o644;
    const m = entry.modified;
    const stat: FsStat = {
      type: isDir ? "dir" : "file",
      size: entry.dataLength,
      mode,
      mtime: decodeTimestamp(m.timestamp, m.tenMs, m.utcOffset),
      uid: 0,
      gid: 0,
      nlink: 1,
      // exFAT has no hard links; a directory's first cluster lets walkers notice a directory cycle.
      id: isDir ? `cluster:${entry.firstCluster}` : null,
    };
    return { stat, entry, attributes: entry.attributes };
  }

  /**
   * The file entry sets (and volume label entries) of a directory, read a
   * chunk at a time: a directory may be 256 MiB of entries.
   */
  private async *entrySets(dir: ExfatNode): AsyncGenerator<{ set: Buffer; index: number } | { label: string }> {
    if (dir.stat.type !== "dir") throw new CorruptImageError(`exFAT ${this.describe(dir)} is not a directory`);
    const where = this.describe(dir);
    const size = dir.stat.size;
    if (size > MAX_DIR_BYTES) throw new CorruptImageError(`exFAT ${where}: ${size} bytes is larger than exFAT allows`);
    let carried = Buffer.alloc(0); // an entry set cut by the end of the previous chunk
    let first = 0; // index of carried's first entry in the directory
    for (let offset = 0; offset < size; ) {
      const length = Math.min(DIR_CHUNK, size - offset);
      const chunk = await this.readClusters(dir, offset, length);
      offset += length;
      const bytes = carried.length ? Buffer.concat([carried, chunk]) : chunk;
      const count = Math.floor(bytes.length / ENTRY_SIZE);
      let i = 0;
      while (i < count) {
        const type = bytes[i * ENTRY_SIZE] as number;
        if (type === EntryType.endOfDirectory) return;
        if (type === EntryType.file) {
          const secondaryCount = bytes[i * ENTRY_SIZE + 1] as number;
          if (i + 1 + secondaryCount > count) {
            if (offset < size) break; // the rest of the set is in the next chunk
            throw new CorruptImageError(`exFAT ${where}: entry set ${first + i} runs past the end`);
          }
          yield { set: bytes.subarray(i * ENTRY_SIZE, (i + 1 + secondaryCount) * ENTRY_SIZE), index: first + i };
          i += 1 + secondaryCount;
          continue;
        }
        if (type === EntryType.volumeLabel) yield { label: decodeVolumeLabel(bytes.subarray(i * ENTRY_SIZE, (i + 1) * ENTRY_SIZE)) };
        // Anything else (deleted entries with the in-use bit clear, bitmap, up-case table, GUID, orphans) is skipped.
        i++;
      }
      carried = Buffer.from(bytes.subarray(i * ENTRY_SIZE));
      first += i;
    }
  }

  private describe(node: ExfatNode): string {
    return node.entry ? `"${escapeName(node.entry.name)}"` : "root directory";
  }

  /**
   * A stream: exFAT allows 256 MiB directories (8 million entries). Small
   * listings are kept for lookup(). exFAT stores no "." or ".."; an entry set
   * named so is given as stored (the extractor renames it, with a warning).
   */
  list(dir: ExfatNode): AsyncIterable<FsDirEntry<ExfatNode>> {
    return this.listings.list(`${dir.entry?.firstCluster ?? this.boot.rootCluster}:${dir.stat.size}`, this.entries(dir));
  }

  private async *entries(dir: ExfatNode): AsyncGenerator<FsDirEntry<ExfatNode>> {
    const where = this.describe(dir);
    for await (const item of this.entrySets(dir)) {
      if (!("set" in item)) continue;
      const set = decodeFileEntrySet(item.set, `${where}, entry ${item.index}`);
      yield { name: set.name, node: this.nodeFor(set) };
    }
  }

  /** Exact name first, then a case-insensitive match (exFAT names are case-insensitive); list() serves small folders from its cache. */
  async lookup(dir: ExfatNode, name: string): Promise<ExfatNode | undefined> {
    return findIgnoringCase(this.list(dir), name);
  }

  async readlink(node: ExfatNode): Promise<string> {
    throw new CorruptImageError(`exFAT ${this.describe(node)} is not a symlink (exFAT has none)`);
  }

  async read(node: ExfatNode, offset: number, length: number): Promise<Buffer> {
    const entry = node.entry;
    if (node.stat.type !== "file" || !entry) throw new CorruptImageError(`exFAT ${this.describe(node)} is not a regular file`);
    checkFileRange(`exFAT ${this.describe(node)}`, entry.dataLength, offset, length);
    // Bytes at or past ValidDataLength were never written: they read as zeros, whatever the clusters hold.
    const valid = Math.max(0, Math.min(length, entry.validDataLength - offset));
    if (valid === length) return this.readClusters(node, offset, length);
    const out = Buffer.alloc(length);
    if (valid > 0) (await this.readClusters(node, offset, valid)).copy(out);
    return out;
  }

  async dataRanges(node: ExfatNode): Promise<Array<[number, number]>> {
    const valid = node.stat.type === "file" ? (node.entry?.validDataLength ?? 0) : 0;
    return valid > 0 ? [[0, valid]] : [];
  }

  /**
   * A file's or directory's clusters. A file's end past ValidDataLength is
   * left out: it reads as zeros whatever its clusters hold.
   */
  async *extents(node: ExfatNode): AsyncGenerator<FileExtent> {
    const runs = node.entry ? await this.runsOf(node) : (node.runs ?? []);
    const size = node.stat.type === "file" ? Math.min(node.stat.size, node.entry?.validDataLength ?? 0) : node.stat.size;
    const cs = this.clusterSize;
    for (const run of runs) {
      const fileOffset = run.fileCluster * cs;
      const length = Math.min(run.count * cs, size - fileOffset);
      if (length <= 0) return;
      yield { fileOffset, length, fsOffset: this.heapStart + (run.cluster - 2) * cs, fsLength: length };
    }
  }

  /** The main and backup boot regions and each FAT. */
  async *regions(): AsyncGenerator<FsRegion> {
    const { bytesPerSector: bps, fatOffset, fatLength, fatCount } = this.boot;
    yield { what: "boot region", fsOffset: 0, length: BOOT_REGION_SECTORS * bps };
    yield { what: "backup boot region", fsOffset: BOOT_REGION_SECTORS * bps, length: BOOT_REGION_SECTORS * bps };
    for (let i = 0; i < fatCount; i++) {
      yield { what: fatCount > 1 ? `FAT ${i + 1} of ${fatCount}` : "FAT", fsOffset: (fatOffset + i * fatLength) * bps, length: fatLength * bps };
    }
  }

  async close(): Promise<void> {}
}

/** Open the exFAT filesystem at the start of `source` (a file, a partition). The caller closes the source. */
export function openExfat(source: BlockSource): Promise<ExfatFileSystem> {
  return ExfatFileSystem.open(source);
}
