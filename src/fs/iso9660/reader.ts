/**
 * The ISO 9660 reader behind `platter ls/cat/extract`: walks the Rock Ridge
 * tree when there is one (real names, modes, owners, symlinks, devices,
 * relocated directories back in their true place, zisofs files inflated),
 * else the Joliet tree, else the plain ISO 9660 names. Multi-extent files
 * read as one; hard links share an extent. Directories are streamed record by
 * record; only small ones are kept, for lookups.
 */
import type { BlockSource } from "../../io/block-source.js";
import { targetBuffer } from "../../io/bounds.js";
import { CorruptImageError, UnsupportedError, UsageError } from "../../errors.js";
import { LruCache } from "../../util/lru.js";
import { decodeName, escapeName } from "../names.js";
import {
  type FileExtent,
  fileTypeFromMode,
  type FileSystem,
  type FileType,
  type FsDirEntry,
  type FsNode,
  type FsRegion,
  type FsStat,
} from "../types.js";
import { FIRST_DESCRIPTOR_SECTOR, SECTOR_SIZE } from "./constants.js";
import { decodeDirectoryRecord, FLAG_DIRECTORY, FLAG_MULTI_EXTENT, type DirectoryRecord } from "./directory-record.js";
import { checkSection, fileSection, sectionRanges, type FileSection } from "./file-section.js";
import { decodeUcs2 } from "./joliet.js";
import { applyRockRidgeEntry, deviceNumbers, emptyRockRidgeInfo, type RockRidgeInfo } from "./rrip.js";
import { readSuspArea } from "./susp-reader.js";
import { readIsoVolume, type IsoVolume } from "./volume.js";
import type { ZisofsParams } from "./zisofs.js";
import { ZisofsReader } from "./zisofs-reader.js";

export type IsoTree = "rockridge" | "joliet" | "iso9660";

export interface Iso9660Options {
  /** Which directory tree to read. Default "auto": Rock Ridge, else Joliet, else plain ISO 9660. */
  tree?: IsoTree | "auto";
}

export interface IsoNode extends FsNode {
  readonly stat: FsStat;
  /** Where the stored bytes are: one file section per directory record, in file order. A directory has its one extent. */
  readonly sections: readonly FileSection[];
  /** Symlink target (Rock Ridge SL). */
  readonly symlink?: string;
  /** Rock Ridge ZF: the stored bytes are zisofs-compressed; stat.size is what they inflate to. */
  readonly zisofs?: ZisofsParams;
  /** Where its record is, for messages: "image.iso: directory at block 23: 'name'". */
  readonly where: string;
}

/** Listings kept in memory (a small LRU: lookups walk one directory many times)... */
const LISTING_CACHE = 64;
/** ...when the directory is this small (about 2,000 records); larger ones are streamed every time. */
const CACHED_LISTING_BYTES = 128 << 10;
/** Sectors of a directory read at once. */
const DIRECTORY_CHUNK_SECTORS = 256;
/** Names Rock Ridge writers give the folder that holds relocated directories. */
const RELOCATION_DIRS = ["rr_moved", ".rr_moved"];

interface RawEntry {
  name: string;
  node: IsoNode;
  /** Rock Ridge RE: a relocated directory in rr_moved, shown at its CL placeholder instead. */
  relocated: boolean;
}

export class Iso9660FileSystem implements FileSystem<IsoNode> {
  readonly type = "iso9660";
  readonly label: string | null;
  private readonly listings = new LruCache<number, RawEntry[]>(LISTING_CACHE);
  private readonly zisofs = new ZisofsReader();
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
    fs.rootNode = await fs.directoryAt(fileSection(rootRecord).block, "/");
    return fs;
  }

  async root(): Promise<IsoNode> {
    return this.rootNode;
  }

  async *list(dir: IsoNode): AsyncIterable<FsDirEntry<IsoNode>> {
    for await (const e of this.visibleEntries(dir)) yield { name: e.name, node: e.node };
  }

  async lookup(dir: IsoNode, name: string): Promise<IsoNode | undefined> {
    // Rock Ridge names are not the sorted ISO identifiers: a lookup is a scan,
    // of the kept listing when the directory is small, else of the stream until found.
    if (this.cacheable(dir)) {
      const entries: RawEntry[] = [];
      for await (const e of this.visibleEntries(dir)) entries.push(e);
      return entries.find((e) => e.name === name)?.node;
    }
    for await (const e of this.visibleEntries(dir)) if (e.name === name) return e.node;
    return undefined;
  }

  async readlink(node: IsoNode): Promise<string> {
    if (node.stat.type !== "symlink" || node.symlink === undefined) {
      throw new CorruptImageError(`${this.source.name}: not a symbolic link`);
    }
    return node.symlink;
  }

  async read(node: IsoNode, offset: number, length: number, into?: Buffer): Promise<Buffer> {
    if (node.stat.type !== "file") throw new CorruptImageError(`${this.source.name}: not a regular file`);
    if (offset < 0 || length < 0 || offset + length > node.stat.size) {
      throw new CorruptImageError(
        `${this.source.name}: read of ${length} bytes at ${offset} is outside the file (${node.stat.size} bytes)`,
      );
    }
    const out = targetBuffer(length, into);
    if (node.zisofs) {
      const stored = { id: node.sections[0].block, size: storedSize(node), read: (o: number, n: number) => this.readStored(node, o, Buffer.alloc(n)) };
      await this.zisofs.read(stored, node.zisofs, offset, out, node.where);
    } else {
      await this.readStored(node, offset, out);
    }
    return out;
  }

  /**
   * The parts of a file that may hold data: ISO 9660 has no holes of its own,
   * but an image written sparse (as `platter iso` writes it) has them where
   * the source file had them, and the source reports those.
   */
  async dataRanges(node: IsoNode): Promise<Array<[number, number]>> {
    const contiguous = node.sections.every((s) => s.unitBlocks === 0);
    if (!this.source.dataRanges || node.stat.type !== "file" || node.zisofs || !contiguous) {
      return node.stat.size > 0 ? [[0, node.stat.size]] : [];
    }
    const ranges: Array<[number, number]> = [];
    let fileOffset = 0;
    for (const section of node.sections) {
      const start = section.block * SECTOR_SIZE;
      for (const [s, len] of section.length > 0 ? await this.source.dataRanges(start, section.length) : []) {
        const from = fileOffset + (s - start);
        const last = ranges[ranges.length - 1];
        if (last && last[0] + last[1] === from) last[1] += len;
        else ranges.push([from, len]);
      }
      fileOffset += section.length;
    }
    return ranges;
  }

  /**
   * Each section of a file or directory (each file unit, when interleaved).
   * A zisofs file's stored bytes inflate through its block pointers, so each
   * piece is given as holding the whole file.
   */
  async *extents(node: IsoNode): AsyncGenerator<FileExtent> {
    if (node.stat.type !== "file" && node.stat.type !== "dir") return;
    let sectionStart = 0;
    for (const section of node.sections) {
      checkSection(section, node.where);
      let fileOffset = sectionStart;
      for (const [fsOffset, length] of sectionRanges(section, 0, section.length)) {
        yield node.zisofs
          ? { fileOffset: 0, length: node.stat.size, fsOffset, fsLength: length, compressed: true }
          : { fileOffset, length, fsOffset, fsLength: length };
        fileOffset += length;
      }
      sectionStart += section.length;
    }
  }

  /** The primary volume descriptor and its path tables (the tree itself is reached through the directories). */
  async *regions(): AsyncGenerator<FsRegion> {
    const { primary } = this.volume;
    yield { what: "primary volume descriptor", fsOffset: FIRST_DESCRIPTOR_SECTOR * SECTOR_SIZE, length: SECTOR_SIZE };
    yield { what: "path table (type L)", fsOffset: primary.typeLPathTable * SECTOR_SIZE, length: primary.pathTableSize };
    yield { what: "path table (type M)", fsOffset: primary.typeMPathTable * SECTOR_SIZE, length: primary.pathTableSize };
  }

  async close(): Promise<void> {
    this.listings.clear();
  }

  /** Bytes [offset, offset + out.length) of the file as stored (compressed, for a zisofs file), into `out`. */
  private async readStored(node: IsoNode, offset: number, out: Buffer): Promise<Buffer> {
    let sectionStart = 0;
    for (const section of node.sections) {
      const from = Math.max(offset, sectionStart) - sectionStart;
      const to = Math.min(offset + out.length, sectionStart + section.length) - sectionStart;
      if (from < to) {
        checkSection(section, node.where);
        let at = sectionStart + from - offset;
        for (const [imageOffset, n] of sectionRanges(section, from, to)) {
          await this.source.read(imageOffset, n, out.subarray(at, at + n));
          at += n;
        }
      }
      sectionStart += section.length;
      if (sectionStart >= offset + out.length) break;
    }
    return out;
  }

  private cacheable(dir: IsoNode): boolean {
    return dir.sections[0].length <= CACHED_LISTING_BYTES;
  }

  /** What list() shows: relocated directories at their true place, and not in rr_moved, which is hidden. */
  private async *visibleEntries(dir: IsoNode): AsyncGenerator<RawEntry> {
    if (dir.stat.type !== "dir") throw new CorruptImageError(`${this.source.name}: not a directory`);
    const atRoot = dir.sections[0].block === this.rootNode.sections[0].block;
    for await (const e of this.entries(dir)) {
      if (e.relocated) continue;
      if (atRoot && (await this.isRelocationDir(e))) continue;
      yield e;
    }
  }

  /** rr_moved at the root holding only relocated directories is bookkeeping, not content (as bsdtar shows it). */
  private async isRelocationDir(e: RawEntry): Promise<boolean> {
    if (this.tree !== "rockridge" || e.node.stat.type !== "dir" || !RELOCATION_DIRS.includes(e.name)) return false;
    for await (const child of this.entries(e.node)) if (!child.relocated) return false;
    return true;
  }

  /** Every entry of a directory in stored order: from the kept listing, or read (and kept when small). */
  private async *entries(dir: IsoNode): AsyncGenerator<RawEntry> {
    const section = dir.sections[0];
    const cached = this.listings.get(section.block);
    if (cached) {
      yield* cached;
      return;
    }
    const kept: RawEntry[] | null = this.cacheable(dir) ? [] : null;
    for await (const entry of this.readDirectory(dir)) {
      kept?.push(entry);
      yield entry;
    }
    if (kept) this.listings.set(section.block, kept);
  }

  private where(block: number): string {
    return `${this.source.name}: directory at block ${block}`;
  }

  /** Every record of a directory extent, sector by sector (records never cross a sector). */
  private async *records(block: number, size: number): AsyncGenerator<DirectoryRecord> {
    const sectors = Math.ceil(size / SECTOR_SIZE);
    for (let s = 0; s < sectors; s += DIRECTORY_CHUNK_SECTORS) {
      const n = Math.min(DIRECTORY_CHUNK_SECTORS, sectors - s);
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

  /** The entries of a directory extent as they are read; a folder that is its own ancestor is corrupt. */
  private async *readDirectory(dir: IsoNode): AsyncGenerator<RawEntry> {
    const { block, length, unitBlocks } = dir.sections[0];
    if (unitBlocks !== 0) throw new UnsupportedError(`${this.where(block)}: recorded in interleaved mode, which platter does not read for folders`);
    const ancestors = new Set<number>();
    for (let d: IsoNode | undefined = dir; d; d = this.parents.get(d)) ancestors.add(d.sections[0].block);
    let sections: DirectoryRecord[] = [];
    for await (const record of this.records(block, length)) {
      if (isSelfOrParent(record)) continue;
      sections.push(record);
      if (record.flags & FLAG_MULTI_EXTENT) continue;
      const entry = await this.entryFor(sections, block);
      sections = [];
      if (entry.node.stat.type === "dir") {
        // A folder that is its own ancestor would make every walk endless (libarchive checks the same).
        if (ancestors.has(entry.node.sections[0].block)) {
          throw new CorruptImageError(`${this.where(block)}: '${escapeName(entry.name)}' points back to a folder above it (a loop)`);
        }
        this.parents.set(entry.node, dir);
      }
      yield entry;
    }
    if (sections.length > 0) {
      throw new CorruptImageError(`${this.where(block)}: multi-extent file ends without its last section`);
    }
  }

  private async rockRidge(record: DirectoryRecord, where: string): Promise<RockRidgeInfo | null> {
    if (this.tree !== "rockridge") return null;
    const info = emptyRockRidgeInfo();
    for (const e of await readSuspArea(this.source, record.systemUse, this.volume.suspSkip ?? 0, where)) {
      applyRockRidgeEntry(info, e);
    }
    return info;
  }

  private async entryFor(sections: DirectoryRecord[], dirBlock: number): Promise<RawEntry> {
    const first = sections[0];
    const where = `${this.where(dirBlock)}: record '${escapeName(decodeName(first.identifier))}'`;
    const rr = await this.rockRidge(first, where);
    const name = this.entryName(first, rr);
    if (rr?.childLink !== undefined) {
      // A placeholder for a directory relocated elsewhere (RRIP CL): show that directory here.
      return { name, node: await this.directoryAt(rr.childLink, `${where}: CL`), relocated: false };
    }
    return { name, node: this.nodeFor(sections, rr, `${this.where(dirBlock)}: '${escapeName(name)}'`), relocated: rr?.relocated ?? false };
  }

  /** A directory node from the "." record at the start of its extent. */
  private async directoryAt(block: number, where: string): Promise<IsoNode> {
    const sector = await this.source.read(block * SECTOR_SIZE, SECTOR_SIZE);
    const self = decodeDirectoryRecord(sector, 0, `${this.where(block)} (${where})`);
    if (!isSelfOrParent(self) || !(self.flags & FLAG_DIRECTORY)) {
      throw new CorruptImageError(`${this.where(block)} (${where}): does not start with its "." record`);
    }
    const rr = await this.rockRidge(self, `${this.where(block)}: "." record`);
    // The records start here, whatever the "." record says of an extended attribute record.
    return this.nodeFor([{ ...self, extent: block, extAttrLength: 0 }], rr, this.where(block), true);
  }

  /** Names are bytes: Rock Ridge and plain identifiers decode losslessly (fs/names.ts), Joliet is UCS-2. */
  private entryName(record: DirectoryRecord, rr: RockRidgeInfo | null): string {
    if (rr?.name && rr.name.length > 0 && !rr.nameSpecial) return decodeName(rr.name);
    const id = record.identifier;
    if (this.tree === "joliet") return decodeUcs2(id).replace(/;\d+$/, "");
    return decodeName(id).replace(/;\d+$/, "").replace(/(.)\.$/, "$1");
  }

  private nodeFor(sections: DirectoryRecord[], rr: RockRidgeInfo | null, where: string, isDirectory = false): IsoNode {
    const first = sections[0];
    const px = rr?.px;
    const recordType: FileType = isDirectory || first.flags & FLAG_DIRECTORY ? "dir" : "file";
    // A mode that names no type is read as what the ISO record says it is.
    const type: FileType = (px && fileTypeFromMode(px.mode)) || recordType;
    const symlinkBytes = type === "symlink" ? rr?.symlink : undefined;
    const zisofs = type === "file" ? rr?.zisofs : undefined;
    const dataSize = sections.reduce((n, s) => n + s.dataLength, 0);
    const size = type === "symlink" ? (symlinkBytes?.length ?? 0) : type === "file" ? (zisofs?.size ?? dataSize) : type === "dir" ? dataSize : 0;
    const stat: FsStat = {
      type,
      size,
      mode: px ? px.mode & 0o7777 : type === "dir" ? 0o555 : 0o444,
      mtime: rr?.times.modify ?? first.recorded ?? 0,
      uid: px?.uid ?? 0,
      gid: px?.gid ?? 0,
      nlink: px?.nlink ?? (type === "dir" ? 2 : 1),
      id: null,
    };
    const fileSections = sections.map(fileSection);
    if (type === "dir") stat.id = fileSections[0].block;
    // Records sharing an extent are one file (hard links) only when all else about them agrees too.
    else if (type === "file" && dataSize > 0) stat.id = JSON.stringify([fileSections.map((s) => [s.block, s.length]), stat, px?.serial ?? null, zisofs ?? null]);
    if ((type === "char" || type === "block") && rr?.device) stat.rdev = deviceNumbers(rr.device.high, rr.device.low);
    return {
      stat,
      sections: fileSections,
      where,
      ...(symlinkBytes ? { symlink: decodeName(symlinkBytes) } : {}),
      ...(zisofs ? { zisofs } : {}),
    };
  }
}

function storedSize(node: IsoNode): number {
  return node.sections.reduce((n, s) => n + s.length, 0);
}

function isSelfOrParent(r: DirectoryRecord): boolean {
  return r.identifier.length === 1 && (r.identifier[0] === 0 || r.identifier[0] === 1);
}

/** Open the ISO 9660 filesystem on a source (a whole image or a partition of one). */
export function openIso9660(source: BlockSource, options?: Iso9660Options): Promise<Iso9660FileSystem> {
  return Iso9660FileSystem.open(source, options);
}
