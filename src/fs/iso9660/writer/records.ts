/**
 * Phase 3 helpers: the bytes of every structure, given a plan whose block
 * numbers are set (layout.ts calls the same functions with blocks still 0 to
 * learn the sizes: no size depends on a block number).
 */
import { MAX_DIRECTORY_RECORD, SECTOR_SIZE } from "../constants.js";
import {
  encodeDirectoryRecord,
  FLAG_DIRECTORY,
  FLAG_MULTI_EXTENT,
  PARENT_ID,
  SELF_ID,
  systemUseOffset,
  type DirectoryRecord,
} from "../directory-record.js";
import { encodeBootCatalog, PLATFORM_EFI, PLATFORM_X86, type BootEntry } from "../el-torito.js";
import { encodePathTable, type PathTableByteOrder } from "../path-table.js";
import {
  encodeCl,
  encodeNm,
  encodePl,
  encodePn,
  encodePx,
  encodeRe,
  encodeSl,
  encodeTf,
  RRIP_1_12,
  S_IFBLK,
  S_IFCHR,
  S_IFDIR,
  S_IFMT,
  type PosixAttributes,
  type Timestamps,
} from "../rrip.js";
import { CE_ENTRY_SIZE, encodeEr, encodeSp } from "../susp.js";
import { encodePrimaryVolumeDescriptor, JOLIET_ESCAPES, VD_PRIMARY, VD_SUPPLEMENTARY, type PrimaryVolumeDescriptor } from "../volume-descriptor.js";
import { ContinuationAreas } from "./continuation.js";
import { jolietIdentifier, encodeUcs2 } from "../joliet.js";
import { jolietNameOf, sections, type FileData, type ImagePlan, type IsoChild, type IsoDir, type JolietDir } from "./plan.js";
import { nameBytes, type SourceNode } from "./scan.js";

/** Lays records into sectors: a record never crosses a sector boundary (ECMA-119 6.8.1.1). */
class DirectoryExtent {
  private readonly chunks: Buffer[] = [];
  private used = 0;

  add(record: Buffer): void {
    const inSector = this.used % SECTOR_SIZE;
    if (inSector + record.length > SECTOR_SIZE) {
      const pad = SECTOR_SIZE - inSector;
      this.chunks.push(Buffer.alloc(pad));
      this.used += pad;
    }
    this.chunks.push(record);
    this.used += record.length;
  }

  /** The extent, zero-filled to whole sectors (at least one). */
  finish(): Buffer {
    const size = Math.max(1, Math.ceil(this.used / SECTOR_SIZE)) * SECTOR_SIZE;
    return Buffer.concat([...this.chunks, Buffer.alloc(size - this.used)]);
  }
}

function record(fields: Partial<DirectoryRecord> & Pick<DirectoryRecord, "identifier" | "extent" | "dataLength">): DirectoryRecord {
  return {
    extAttrLength: 0,
    recorded: null,
    flags: 0,
    fileUnitSize: 0,
    interleaveGap: 0,
    volumeSequence: 1,
    systemUse: Buffer.alloc(0),
    ...fields,
  };
}

/**
 * The system use field of one record: the entries that fit, then (if some do
 * not) a CE entry to the continuation area holding the rest.
 */
function placeSystemUse(entries: Buffer[], identifierLength: number, areas: ContinuationAreas): Buffer {
  const room = MAX_DIRECTORY_RECORD - systemUseOffset(identifierLength);
  const total = entries.reduce((n, e) => n + e.length, 0);
  if (total <= room) return Buffer.concat(entries);
  let used = 0;
  let kept = 0;
  while (kept < entries.length && used + entries[kept].length + CE_ENTRY_SIZE <= room) used += entries[kept++].length;
  return Buffer.concat([...entries.slice(0, kept), areas.place(entries.slice(kept))]);
}

/** Everything Rock Ridge says about a node: attributes and times. */
class RockRidge {
  constructor(private readonly plan: ImagePlan) {}

  times(node: SourceNode | null): Timestamps {
    const { volumeTime, reproducible } = this.plan.options;
    if (!node) return { modify: volumeTime, access: volumeTime, attributes: volumeTime };
    return { modify: node.mtime, access: reproducible ? node.mtime : node.atime, attributes: reproducible ? node.mtime : node.ctime };
  }

  dirAttributes(dir: IsoDir): PosixAttributes {
    const serial = dir.serial;
    if (!dir.node) {
      return { mode: S_IFDIR | 0o555, nlink: 2 + dir.children.length, uid: 0, gid: 0, serial };
    }
    const subdirs = (dir.node.children ?? []).filter((c) => c.kind === "dir").length;
    return { mode: dir.node.mode, nlink: 2 + subdirs, uid: dir.node.uid, gid: dir.node.gid, serial };
  }

  nodeAttributes(node: SourceNode, data?: FileData): PosixAttributes {
    const serial = data?.serial ?? this.plan.serials.get(node) ?? 0;
    return { mode: node.mode, nlink: data?.links ?? 1, uid: node.uid, gid: node.gid, serial };
  }

  /** The entries of a child record, small fixed ones first so they stay in the record itself. */
  childEntries(child: IsoChild, inRelocationDir: boolean): Buffer[] {
    if (child.kind === "dir" || child.kind === "moved") {
      const dir = child.dir;
      const out = [encodePx(this.dirAttributes(dir)), encodeTf(this.times(dir.node))];
      if (child.kind === "moved") out.push(encodeCl(dir.block));
      if (inRelocationDir) out.push(encodeRe());
      out.push(...encodeNm(dir.node ? nameBytes(dir.node) : Buffer.from(dir.ownName ?? "")));
      return out;
    }
    const node = child.node;
    const out = [encodePx(this.nodeAttributes(node, child.kind === "file" ? child.data : undefined)), encodeTf(this.times(node))];
    const format = node.mode & S_IFMT;
    if (child.kind === "other" && (format === S_IFBLK || format === S_IFCHR)) out.push(encodePn(node.rdev));
    out.push(...encodeNm(nameBytes(node)));
    if (child.kind === "symlink") out.push(...encodeSl(node.target ?? Buffer.alloc(0)));
    return out;
  }
}

function dirRecord(identifier: Buffer, dir: { block: number; sectors: number }, recorded: number, systemUse: Buffer): DirectoryRecord {
  return record({ identifier, extent: dir.block, dataLength: dir.sectors * SECTOR_SIZE, flags: FLAG_DIRECTORY, recorded, systemUse });
}

function fileRecords(identifier: Buffer, data: FileData | null, recorded: number, systemUse: Buffer): DirectoryRecord[] {
  if (!data) return [record({ identifier, extent: 0, dataLength: 0, recorded, systemUse })];
  const parts = sections(data);
  return parts.map(([block, length], i) =>
    record({ identifier, extent: length > 0 ? block : 0, dataLength: length, recorded, systemUse, flags: i < parts.length - 1 ? FLAG_MULTI_EXTENT : 0 }),
  );
}

export interface RenderedDirectory {
  extent: Buffer;
  continuation: Buffer;
}

/** A folder of the ISO 9660 (Rock Ridge) tree and its continuation blocks. */
export function renderIsoDirectory(plan: ImagePlan, dir: IsoDir): RenderedDirectory {
  const rr = plan.options.rockRidge ? new RockRidge(plan) : null;
  const areas = new ContinuationAreas(dir.block + dir.sectors);
  const extent = new DirectoryExtent();
  const isRoot = dir.parent === dir;
  const su = (entries: () => Buffer[], idLength: number) => (rr ? placeSystemUse(entries(), idLength, areas) : Buffer.alloc(0));
  const time = (d: IsoDir) => d.node?.mtime ?? plan.options.volumeTime;

  const selfSu = su(() => {
    const r = rr as RockRidge;
    const out = [encodePx(r.dirAttributes(dir)), encodeTf(r.times(dir.node))];
    return isRoot ? [encodeSp(), ...out, encodeEr(RRIP_1_12)] : out;
  }, 1);
  extent.add(encodeDirectoryRecord(dirRecord(SELF_ID, dir, time(dir), selfSu)));
  const parentSu = su(() => {
    const r = rr as RockRidge;
    const out = [encodePx(r.dirAttributes(dir.parent)), encodeTf(r.times(dir.parent.node))];
    if (dir.trueParent) out.push(encodePl(dir.trueParent.block));
    return out;
  }, 1);
  extent.add(encodeDirectoryRecord(dirRecord(PARENT_ID, dir.parent, time(dir.parent), parentSu)));

  const inRelocationDir = dir.node === null;
  for (const child of dir.children) {
    const identifier = Buffer.from(child.identifier, "latin1");
    const childSu = su(() => (rr as RockRidge).childEntries(child, inRelocationDir), identifier.length);
    if (child.kind === "dir") {
      extent.add(encodeDirectoryRecord(dirRecord(identifier, child.dir, time(child.dir), childSu)));
    } else if (child.kind === "moved") {
      extent.add(encodeDirectoryRecord(record({ identifier, extent: 0, dataLength: 0, recorded: time(child.dir), systemUse: childSu })));
    } else {
      const data = child.kind === "file" ? child.data : null;
      for (const r of fileRecords(identifier, data, child.node.mtime, childSu)) extent.add(encodeDirectoryRecord(r));
    }
  }
  return { extent: extent.finish(), continuation: Buffer.concat(areas.blocks) };
}

/** A folder of the Joliet tree. */
export function renderJolietDirectory(dir: JolietDir): Buffer {
  const extent = new DirectoryExtent();
  const none = Buffer.alloc(0);
  extent.add(encodeDirectoryRecord(dirRecord(SELF_ID, dir, dir.node.mtime, none)));
  extent.add(encodeDirectoryRecord(dirRecord(PARENT_ID, dir.parent, dir.parent.node.mtime, none)));
  for (const child of dir.children) {
    const identifier = jolietIdentifier(jolietNameOf(child.kind === "dir" ? child.dir : child), child.kind === "dir");
    if (child.kind === "dir") {
      extent.add(encodeDirectoryRecord(dirRecord(identifier, child.dir, child.dir.node.mtime, none)));
    } else {
      for (const r of fileRecords(identifier, child.data, child.node.mtime, none)) extent.add(encodeDirectoryRecord(r));
    }
  }
  return extent.finish();
}

interface PathTableFolder {
  identifier: Buffer;
  block: number;
  parent: number;
}

/** The ISO 9660 folders as path table entries (the root's identifier is one zero byte). */
export function isoPathTableFolders(dirs: readonly IsoDir[]): PathTableFolder[] {
  return dirs.map((d, i) => ({ identifier: i === 0 ? SELF_ID : Buffer.from(d.identifier, "latin1"), block: d.block, parent: d.parent.number }));
}

/** The Joliet folders as path table entries, names in UCS-2. */
export function jolietPathTableFolders(dirs: readonly JolietDir[]): PathTableFolder[] {
  return dirs.map((d, i) => ({ identifier: i === 0 ? SELF_ID : encodeUcs2(jolietNameOf(d)), block: d.block, parent: d.parent.number }));
}

/** A path table (unpadded) of folders in path table order. Parent numbers past 65535 cannot be written: they are capped. */
export function renderPathTable(folders: readonly PathTableFolder[], order: PathTableByteOrder): Buffer {
  return encodePathTable(
    folders.map((f) => ({ extAttrLength: 0, extent: f.block, parent: Math.min(f.parent, 0xffff), identifier: f.identifier })),
    order,
  );
}

/** The catalogue sector: BIOS entry as default (or EFI alone), EFI in a UEFI section. */
export function renderBootCatalog(plan: ImagePlan): Buffer {
  const entries: BootEntry[] = plan.boot.map((b) => ({
    platform: b.platform === "efi" ? PLATFORM_EFI : PLATFORM_X86,
    bootable: true,
    mediaType: 0,
    loadSegment: 0,
    systemType: 0,
    sectorCount: b.loadSectors,
    loadRba: b.data.block,
  }));
  return encodeBootCatalog({ platform: entries[0].platform, idString: "", entries });
}

export interface DescriptorLayout {
  volumeSpaceSize: number;
  isoPathTable: { size: number; l: number; m: number };
  jolietPathTable: { size: number; l: number; m: number } | null;
}

/** PVD (and the Joliet SVD when there is a Joliet tree). */
export function renderVolumeDescriptors(plan: ImagePlan, layout: DescriptorLayout): { primary: Buffer; joliet: Buffer | null } {
  const o = plan.options;
  const base = (type: typeof VD_PRIMARY | typeof VD_SUPPLEMENTARY, root: { block: number; sectors: number; node: SourceNode | null }, paths: { size: number; l: number; m: number }, volumeId: string): PrimaryVolumeDescriptor => ({
    type,
    volumeFlags: 0,
    systemId: "",
    volumeId,
    volumeSpaceSize: layout.volumeSpaceSize,
    escapeSequences: type === VD_SUPPLEMENTARY ? Buffer.concat([Buffer.from(JOLIET_ESCAPES[2], "latin1"), Buffer.alloc(29)]) : Buffer.alloc(32),
    volumeSetSize: 1,
    volumeSequenceNumber: 1,
    logicalBlockSize: SECTOR_SIZE,
    pathTableSize: paths.size,
    typeLPathTable: paths.l,
    optionalTypeLPathTable: 0,
    typeMPathTable: paths.m,
    optionalTypeMPathTable: 0,
    root: dirRecord(SELF_ID, root, root.node?.mtime ?? o.volumeTime, Buffer.alloc(0)),
    volumeSetId: "",
    publisherId: "",
    dataPreparerId: "",
    applicationId: o.applicationId,
    copyrightFileId: "",
    abstractFileId: "",
    bibliographicFileId: "",
    creation: o.volumeTime,
    modification: o.volumeTime,
    expiration: null,
    effective: o.volumeTime,
    fileStructureVersion: 1,
    applicationUse: Buffer.alloc(512),
  });
  const primary = encodePrimaryVolumeDescriptor(base(VD_PRIMARY, plan.root, layout.isoPathTable, isoVolumeId(o.volumeId)));
  const joliet =
    plan.jolietRoot && layout.jolietPathTable
      ? encodePrimaryVolumeDescriptor(base(VD_SUPPLEMENTARY, plan.jolietRoot, layout.jolietPathTable, jolietVolumeId(o.volumeId)))
      : null;
  return { primary, joliet };
}

/** Characters a primary volume id holds (ECMA-119 8.4.6). */
export const MAX_VOLUME_ID = 32;
/** UCS-2 characters a Joliet volume id holds: its 32 bytes. */
export const MAX_JOLIET_VOLUME_ID = 16;

/** The primary volume id: printable ASCII (buildIso refuses one longer than 32 characters). */
export function isoVolumeId(label: string): string {
  return label.replace(/[^\x20-\x7e]/g, "_");
}

/** The Joliet volume id: the label's first 16 UTF-16 units, without half a surrogate pair. */
export function jolietVolumeId(label: string): string {
  const cut = label.slice(0, MAX_JOLIET_VOLUME_ID);
  return /[\ud800-\udbff]$/.test(cut) ? cut.slice(0, -1) : cut;
}
