/**
 * The ISO 9660 reader behind `platter ls/cat/extract`: walks the Rock Ridge
 * tree when there is one (real names, modes, owners, symlinks, relocated
 * directories back in their true place), else the Joliet tree, else the plain
 * ISO 9660 names. Multi-extent files read as one; hard links share an extent.
 */
import type { BlockSource } from "../../io/block-source.js";
import { CorruptImageError, UsageError } from "../../errors.js";
import { fileTypeFromMode, type FileSystem, type FileType, type FsDirEntry, type FsNode, type FsStat } from "../types.js";
import { SECTOR_SIZE } from "./constants.js";
import { decodeDirectoryRecord, FLAG_DIRECTORY, FLAG_MULTI_EXTENT, type DirectoryRecord } from "./directory-record.js";
import { decodeUcs2 } from "./joliet.js";
import {
  applyRockRidgeEntry,
  emptyRockRidgeInfo,
  S_IFMT,
  type RockRidgeInfo,
} from "./rrip.js";
import { readSuspArea } from "./susp-reader.js";
import { readIsoVolume, type IsoVolume } from "./volume.js";

export type IsoTree = "rockridge" | "joliet" | "iso9660";

export interface Iso9660Options {
  /** Which directory tree to read. Default "auto": Rock Ridge, else Joliet, else plain ISO 9660. */
  tree?: IsoTree | "auto";
}

export interface IsoNode extends FsNode {
  readonly stat: FsStat;
  /** Where the bytes are: [block, length] per section, in file order. A directory has its one extent. */
  readonly extents: ReadonlyArray<readonly [number, number]>;
  /** Symlink target (Rock Ridge SL). */
  readonly symlink?: string;
}

/** Listings kept in memory (a small LRU: lookups walk one directory many times). */
const LISTING_CACHE = 64;
/** Names Rock Ridge writers give the folder that holds relocated directories. */
const RELOCATION_DIRS = ["rr_moved", ".rr_moved"];
const utf8 = new TextDecoder("utf-8");

interface RawEntry {
  name: string;
  node: IsoNode;
  /** Rock Ridge RE: a relocated directory in rr_moved, shown at its CL placeholder instead. */
  relocated: boolean;
}

export class Iso9660FileSystem implements FileSystem<IsoNode> {
  readonly type = "iso9660";
  readonly label: string | null;
  private readonly listings = new Map<number, RawEntry[]>();
  /** The folder each folder was listed from, to catch a corrupt image whose folders form a loop. */
  private readonly parents = new WeakMap<IsoNode, IsoNode>();
  private rootNode!: IsoNode;

  private constructor(
    private readonly source: BlockSource,
    readonly volume: IsoVolume,
    /** The tree being read. */
    readonly tree: IsoTree,
  ) {
    this.label = volume.primary.volumeId || volume.joliet?.volumeId || null;
  }

  static async open(source: BlockSource, options: Iso9660Options = {}): Promise<Iso9660FileSystem> {
    const volume = await readIsoVolume(source);
    const wanted = options.tree ?? "auto";
    let tree: IsoTree;
    if (wanted === "auto") tree = volume.rockRidge ? "rockridge" : volume.joliet ? "joliet" : "iso9660";
    else tree = wanted;
    if (tree === "rockridge" && !volume.rockRidge) throw new UsageError(`${source.name}: the image has no Rock Ridge tree`);
    if (tree === "joliet" && !volume.joliet) throw new UsageError(`${source.name}: the image has no Joliet tree`);
    const rootRecord = tree === "joliet" ? (volume.joliet as NonNullable<IsoVolume["joliet"]>).root : volume.primary.root;
    const fs = new Iso9660FileSystem(source, volume, tree);
    // The root's own "." record carries its Rock Ridge attributes.
    fs.rootNode = await fs.directoryAt(rootRecord.extent, "/");
    return fs;
  }

  async root(): Promise<IsoNode> {
    return this.rootNode;
  }

  async *list(dir: IsoNode): AsyncIterable<FsDirEntry<IsoNode>> {
    yield* await this.entries(dir);
  }

  /** The whole listing at once, for lookup() and the listing cache. */
  private async entries(dir: IsoNode): Promise<Array<FsDirEntry<IsoNode>>> {
    if (dir.stat.type !== "dir") throw new CorruptImageError(`${this.source.name}: not a directory`);
    const raw = await this.rawList(dir);
    const visible: Array<FsDirEntry<IsoNode>> = [];
    for (const e of raw) {
      if (e.relocated) continue;
      if (dir === this.rootNode && (await this.isRelocationDir(e))) continue;
      visible.push({ name: e.name, node: e.node });
    }
    return visible;
  }

  async lookup(dir: IsoNode, name: string): Promise<IsoNode | undefined> {
    return (await this.entries(dir)).find((e) => e.name === name)?.node;
  }

  async readlink(node: IsoNode): Promise<string> {
    if (node.stat.type !== "symlink" || node.symlink === undefined) {
      throw new CorruptImageError(`${this.source.name}: not a symbolic link`);
    }
    return node.symlink;
  }

  async read(node: IsoNode, offset: number, length: number): Promise<Buffer> {
    if (node.stat.type !== "file") throw new CorruptImageError(`${this.source.name}: not a regular file`);
    if (offset < 0 || length < 0 || offset + length > node.stat.size) {
      throw new CorruptImageError(
        `${this.source.name}: read of ${length} bytes at ${offset} is outside the file (${node.stat.size} bytes)`,
      );
    }
    const out = Buffer.alloc(length);
    let fileOffset = 0;
    for (const [block, size] of node.extents) {
      const from = Math.max(offset, fileOffset);
      const to = Math.min(offset + length, fileOffset + size);
      if (from < to) {
        await this.source.read(block * SECTOR_SIZE + (from - fileOffset), to - from, out.subarray(from - offset, to - offset));
      }
      fileOffset += size;
      if (fileOffset >= offset + length) break;
    }
    return out;
  }

  /**
   * The parts of a file that may hold data: ISO 9660 has no holes of its own,
   * but an image written sparse (as `platter iso` writes it) has them where
   * the source file had them, and the source reports those.
   */
  async dataRanges(node: IsoNode): Promise<Array<[number, number]>> {
    if (!this.source.dataRanges || node.stat.type !== "file") return node.stat.size > 0 ? [[0, node.stat.size]] : [];
    const ranges: Array<[number, number]> = [];
    let fileOffset = 0;
    for (const [block, size] of node.extents) {
      const start = block * SECTOR_SIZE;
      for (const [s, len] of size > 0 ? await this.source.dataRanges(start, size) : []) {
        const from = fileOffset + (s - start);
        const last = ranges[ranges.length - 1];
        if (last && last[0] + last[1] === from) last[1] += len;
        else ranges.push([from, len]);
      }
      fileOffset += size;
    }
    return ranges;
  }

  async close(): Promise<void> {
    this.listings.clear();
  }

  /** rr_moved at the root holding only relocated directories is bookkeeping, not content (as bsdtar shows it). */
  private async isRelocationDir(e: RawEntry): Promise<boolean> {
    if (this.tree !== "rockridge" || e.node.stat.type !== "dir" || !RELOCATION_DIRS.includes(e.name)) return false;
    return (await this.rawList(e.node)).every((child) => child.relocated);
  }

  private async rawList(dir: IsoNode): Promise<RawEntry[]> {
    const [block, size] = dir.extents[0];
    const cached = this.listings.get(block);
    if (cached) {
      this.listings.delete(block);
      this.listings.set(block, cached);
      return cached;
    }
    const entries = await this.readDirectory(block, size);
    this.checkLoops(dir, entries);
    this.listings.set(block, entries);
    if (this.listings.size > LISTING_CACHE) this.listings.delete(this.listings.keys().next().value as number);
    return entries;
  }

  /** A folder that is its own ancestor would make every walk endless (libarchive checks the same). */
  private checkLoops(dir: IsoNode, entries: RawEntry[]): void {
    const ancestors = new Set<number>();
    for (let d: IsoNode | undefined = dir; d; d = this.parents.get(d)) ancestors.add(d.extents[0][0]);
    for (const e of entries) {
      if (e.node.stat.type !== "dir") continue;
      if (ancestors.has(e.node.extents[0][0])) {
        throw new CorruptImageError(`${this.where(dir.extents[0][0])}: '${e.name}' points back to a folder above it (a loop)`);
      }
      this.parents.set(e.node, dir);
    }
  }

  private where(block: number): string {
    return `${this.source.name}: directory at block ${block}`;
  }

  /** Every record of a directory extent, sector by sector (records never cross a sector). */
  private async *records(block: number, size: number): AsyncGenerator<DirectoryRecord> {
    const chunkSectors = 256;
    const sectors = Math.ceil(size / SECTOR_SIZE);
    for (let s = 0; s < sectors; s += chunkSectors) {
      const n = Math.min(chunkSectors, sectors - s);
      const buf = await this.source.read((block + s) * SECTOR_SIZE, n * SECTOR_SIZE);
      for (let i = 0; i < n; i++) {
        const sector = buf.subarray(i * SECTOR_SIZE, (i + 1) * SECTOR_SIZE);
        let o = 0;
        while (o < SECTOR_SIZE && sector[o] !== 0) {
          yield decodeDirectoryRecord(sector, o, `${this.where(block)}, sector ${s + i}, byte ${o}`);
          o += sector[o];
        }
      }
    }
  }

  private async readDirectory(block: number, size: number): Promise<RawEntry[]> {
    const entries: RawEntry[] = [];
    let sections: DirectoryRecord[] = [];
    for await (const record of this.records(block, size)) {
      if (isSelfOrParent(record)) continue;
      sections.push(record);
      if (record.flags & FLAG_MULTI_EXTENT) continue;
      const entry = await this.entryFor(sections, block);
      sections = [];
      if (entry) entries.push(entry);
    }
    if (sections.length > 0) {
      throw new CorruptImageError(`${this.where(block)}: multi-extent file ends without its last section`);
    }
    return entries;
  }

  private async rockRidge(record: DirectoryRecord, where: string): Promise<RockRidgeInfo | null> {
    if (this.tree !== "rockridge") return null;
    const info = emptyRockRidgeInfo();
    for (const e of await readSuspArea(this.source, record.systemUse, this.volume.suspSkip ?? 0, where)) {
      applyRockRidgeEntry(info, e);
    }
    return info;
  }

  private async entryFor(sections: DirectoryRecord[], dirBlock: number): Promise<RawEntry | null> {
    const first = sections[0];
    const where = `${this.where(dirBlock)}: record '${first.identifier.toString("latin1")}'`;
    const rr = await this.rockRidge(first, where);
    const name = this.entryName(first, rr);
    if (rr?.childLink !== undefined) {
      // A placeholder for a directory relocated elsewhere (RRIP CL): show that directory here.
      return { name, node: await this.directoryAt(rr.childLink, `${where}: CL`), relocated: false };
    }
    return { name, node: this.nodeFor(sections, rr), relocated: rr?.relocated ?? false };
  }

  /** A directory node from the "." record at the start of its extent. */
  private async directoryAt(block: number, where: string): Promise<IsoNode> {
    const sector = await this.source.read(block * SECTOR_SIZE, SECTOR_SIZE);
    const self = decodeDirectoryRecord(sector, 0, `${this.where(block)} (${where})`);
    if (!isSelfOrParent(self) || !(self.flags & FLAG_DIRECTORY)) {
      throw new CorruptImageError(`${this.where(block)} (${where}): does not start with its "." record`);
    }
    const rr = await this.rockRidge(self, `${this.where(block)}: "." record`);
    return this.nodeFor([{ ...self, extent: block }], rr, true);
  }

  private entryName(record: DirectoryRecord, rr: RockRidgeInfo | null): string {
    if (rr?.name && !rr.nameSpecial) return utf8.decode(rr.name);
    const id = record.identifier;
    if (this.tree === "joliet") return decodeUcs2(id).replace(/;\d+$/, "");
    return id.toString("latin1").replace(/;\d+$/, "").replace(/(.)\.$/, "$1");
  }

  private nodeFor(sections: DirectoryRecord[], rr: RockRidgeInfo | null, isDirectory = false): IsoNode {
    const first = sections[0];
    const px = rr?.px;
    let type: FileType;
    const format = px ? px.mode & S_IFMT : 0;
    if (px && format !== 0) {
      // A mode that names no type is read as what the ISO record says it is.
      type = fileTypeFromMode(px.mode) ?? (isDirectory || first.flags & FLAG_DIRECTORY ? "dir" : "file");
    } else {
      type = isDirectory || first.flags & FLAG_DIRECTORY ? "dir" : "file";
    }
    const symlink = type === "symlink" && rr?.symlink ? utf8.decode(rr.symlink) : undefined;
    const dataSize = sections.reduce((n, s) => n + s.dataLength, 0);
    const size = type === "symlink" ? Buffer.byteLength(symlink ?? "") : type !== "file" && type !== "dir" ? 0 : dataSize;
    const stat: FsStat = {
      type,
      size,
      mode: px ? px.mode & 0o7777 : type === "dir" ? 0o555 : 0o444,
      mtime: rr?.times.modify ?? first.recorded ?? 0,
      uid: px?.uid ?? 0,
      gid: px?.gid ?? 0,
      nlink: px?.nlink ?? (type === "dir" ? 2 : 1),
      id: type === "dir" || (type === "file" && dataSize > 0) ? first.extent : null,
    };
    return { stat, extents: sections.map((s) => [s.extent, s.dataLength] as const), ...(symlink !== undefined ? { symlink } : {}) };
  }
}

function isSelfOrParent(r: DirectoryRecord): boolean {
  return r.identifier.length === 1 && (r.identifier[0] === 0 || r.identifier[0] === 1);
}

/** Open the ISO 9660 filesystem on a source (a whole image or a partition of one). */
export function openIso9660(source: BlockSource, options?: Iso9660Options): Promise<Iso9660FileSystem> {
  return Iso9660FileSystem.open(source, options);
}
