/**
 * Phase 3 helpers: the bytes of every structure, given a plan whose block
 * numbers are set; and for layout.ts, before any block is known, the sizes
 * of the directories (no size depends on a block number).
 */
import { MAX_DIRECTORY_RECORD, SECTOR_SIZE } from "../constants.js";
import {
  directoryRecordSize,
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
  LOCATION_ENTRY_SIZE,
  nmEntrySizes,
  PN_ENTRY_SIZE,
  PX_ENTRY_SIZE,
  RRIP_1_12,
  S_IFBLK,
  S_IFCHR,
  S_IFDIR,
  S_IFMT,
  tfEntrySize,
  type PosixAttributes,
  type Timestamps,
} from "../rrip.js";
import { CE_ENTRY_SIZE, encodeEr, encodeSp, SP_ENTRY_SIZE, SUSP_HEADER_SIZE } from "../susp.js";
import { encodePrimaryVolumeDescriptor, JOLIET_ESCAPES, VD_PRIMARY, VD_SUPPLEMENTARY, type PrimaryVolumeDescriptor } from "../volume-descriptor.js";
import { ContinuationAreas, type Sized } from "./continuation.js";
import { encodeUcs2, jolietIdentifier, jolietIdentifierLength } from "../joliet.js";
import { jolietNameOf, sections, type FileData, type ImagePlan, type IsoChild, type IsoDir, type JolietDir } from "./plan.js";
import { nameBytes, type SourceNode } from "./scan.js";

/** Lays records into sectors: a record never crosses a sector boundary (ECMA-119 6.8.1.1). */
class DirectoryExtent {
  private readonly chunks: Buffer[] = [];
  private used = 0;

  /** `measuring`: records are only lengths, for sectors(); finish() is not called. */
  constructor(private readonly measuring: boolean) {}

  add(record: Sized): void {
    const inSector = this.used % SECTOR_SIZE;
    if (inSector + record.length > SECTOR_SIZE) {
      const pad = SECTOR_SIZE - inSector;
      if (!this.measuring) this.chunks.push(Buffer.alloc(pad));
      this.used += pad;
    }
    if (!this.measuring) this.chunks.push(record as Buffer);
    this.used += record.length;
  }

  /** Whole sectors (at least one). */
  sectors(): number {
    return Math.max(1, Math.ceil(this.used / SECTOR_SIZE));
  }

  /** The extent, zero-filled to whole sectors. */
  finish(): Buffer {
    const size = this.sectors() * SECTOR_SIZE;
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
 * How a directory's records and their Rock Ridge entries come out: encoded,
 * or for the layout, which needs only sizes (none depends on a block
 * number), as lengths. One walk over the records serves both, so the two
 * cannot disagree.
 */
interface RecordMaker {
  readonly measuring: boolean;
  px(attributes: () => PosixAttributes): Sized;
  tf(times: Timestamps): Sized;
  cl(block: number): Sized;
  pl(block: number): Sized;
  re(): Sized;
  pn(rdev: number): Sized;
  nm(name: Buffer): Sized[];
  sl(target: Buffer): Sized[];
  sp(): Sized;
  er(): Sized;
  /** A directory record with this identifier (latin1 for ISO 9660, the UCS-2 bytes for Joliet) and system use field. */
  record(identifier: string | Sized, systemUse: Sized, fields: Omit<DirectoryRecord, "identifier" | "systemUse" | "extAttrLength" | "fileUnitSize" | "interleaveGap" | "volumeSequence">): Sized;
}

const sized = (length: number): Sized => ({ length });

const ENCODE: RecordMaker = {
  measuring: false,
  px: (attributes) => encodePx(attributes()),
  tf: encodeTf,
  cl: encodeCl,
  pl: encodePl,
  re: encodeRe,
  pn: encodePn,
  nm: encodeNm,
  sl: encodeSl,
  sp: () => encodeSp(),
  er: () => encodeEr(RRIP_1_12),
  // A literal, not spread defaults: this runs for every record of the image.
  record: (identifier, systemUse, { extent, dataLength, flags, recorded }) =>
    encodeDirectoryRecord({
      extAttrLength: 0,
      extent,
      dataLength,
      recorded,
      flags,
      fileUnitSize: 0,
      interleaveGap: 0,
      volumeSequence: 1,
      identifier: typeof identifier === "string" ? Buffer.from(identifier, "latin1") : (identifier as Buffer),
      systemUse: systemUse as Buffer,
    }),
};

const PX_SIZED = sized(PX_ENTRY_SIZE);
const LOCATION_SIZED = sized(LOCATION_ENTRY_SIZE);
const MEASURE: RecordMaker = {
  measuring: true,
  px: () => PX_SIZED,
  tf: (times) => sized(tfEntrySize(times)),
  cl: () => LOCATION_SIZED,
  pl: () => LOCATION_SIZED,
  re: () => sized(SUSP_HEADER_SIZE),
  pn: () => sized(PN_ENTRY_SIZE),
  nm: (name) => nmEntrySizes(name.length).map(sized),
  sl: encodeSl,
  sp: () => sized(SP_ENTRY_SIZE),
  er: () => encodeEr(RRIP_1_12),
  record: (identifier, systemUse) => sized(directoryRecordSize(identifier.length, systemUse.length)),
};

const NO_SYSTEM_USE = Buffer.alloc(0);

/**
 * The system use field of one record: the entries that fit, then (if some do
 * not) a CE entry to the continuation area holding the rest.
 */
function placeSystemUse(entries: Sized[], identifierLength: number, areas: ContinuationAreas, measuring: boolean): Sized {
  const room = MAX_DIRECTORY_RECORD - systemUseOffset(identifierLength);
  const total = entries.reduce((n, e) => n + e.length, 0);
  if (total <= room) return measuring ? sized(total) : Buffer.concat(entries as Buffer[]);
  let used = 0;
  let kept = 0;
  while (kept < entries.length && used + entries[kept].length + CE_ENTRY_SIZE <= room) used += entries[kept++].length;
  const ce = areas.place(entries.slice(kept));
  return measuring ? sized(used + ce.length) : Buffer.concat([...entries.slice(0, kept), ce] as Buffer[]);
}

/** Everything Rock Ridge says about a node: attributes and times. */
class RockRidge {
  constructor(
    private readonly plan: ImagePlan,
    private readonly make: RecordMaker,
  ) {}

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

  /** The entries of a folder's own records ("." and ".."): attributes and times. */
  dirEntries(dir: IsoDir): Sized[] {
    return [this.make.px(() => this.dirAttributes(dir)), this.make.tf(this.times(dir.node))];
  }

  /** The entries of a child record, small fixed ones first so they stay in the record itself. */
  childEntries(child: IsoChild, inRelocationDir: boolean): Sized[] {
    const make = this.make;
    if (child.kind === "dir" || child.kind === "moved") {
      const dir = child.dir;
      const out = this.dirEntries(dir);
      if (child.kind === "moved") out.push(make.cl(dir.block));
      if (inRelocationDir) out.push(make.re());
      out.push(...make.nm(dir.node ? nameBytes(dir.node) : Buffer.from(dir.ownName ?? "")));
      return out;
    }
    const node = child.node;
    const out = [make.px(() => this.nodeAttributes(node, child.kind === "file" ? child.data : undefined)), make.tf(this.times(node))];
    const format = node.mode & S_IFMT;
    if (child.kind === "other" && (format === S_IFBLK || format === S_IFCHR)) out.push(make.pn(node.rdev));
    out.push(...make.nm(nameBytes(node)));
    if (child.kind === "symlink") out.push(...make.sl(node.target ?? Buffer.alloc(0)));
    return out;
  }
}

/** The records of a folder ("." and ".." included) and of its continuation areas. */
function isoDirectory(plan: ImagePlan, dir: IsoDir, make: RecordMaker): { extent: DirectoryExtent; areas: ContinuationAreas } {
  const rr = plan.options.rockRidge ? new RockRidge(plan, make) : null;
  const areas = new ContinuationAreas(dir.block + dir.sectors, make.measuring);
  const extent = new DirectoryExtent(make.measuring);
  const isRoot = dir.parent === dir;
  const su = (entries: (r: RockRidge) => Sized[], idLength: number) => (rr ? placeSystemUse(entries(rr), idLength, areas, make.measuring) : NO_SYSTEM_USE);
  const time = (d: IsoDir) => d.node?.mtime ?? plan.options.volumeTime;
  const addDir = (identifier: string | Sized, target: IsoDir, systemUse: Sized) =>
    extent.add(make.record(identifier, systemUse, { extent: target.block, dataLength: target.sectors * SECTOR_SIZE, flags: FLAG_DIRECTORY, recorded: time(target) }));

  addDir(SELF_ID, dir, su((r) => (isRoot ? [make.sp(), ...r.dirEntries(dir), make.er()] : r.dirEntries(dir)), 1));
  addDir(PARENT_ID, dir.parent, su((r) => (dir.trueParent ? [...r.dirEntries(dir.parent), make.pl(dir.trueParent.block)] : r.dirEntries(dir.parent)), 1));

  const inRelocationDir = dir.node === null;
  for (const child of dir.children) {
    const identifier = child.identifier;
    const childSu = su((r) => r.childEntries(child, inRelocationDir), identifier.length);
    if (child.kind === "dir") {
      addDir(identifier, child.dir, childSu);
    } else if (child.kind === "moved") {
      extent.add(make.record(identifier, childSu, { extent: 0, dataLength: 0, flags: 0, recorded: time(child.dir) }));
    } else {
      addFile(extent, make, identifier, child.kind === "file" ? child.data : null, child.node.mtime, childSu);
    }
  }
  return { extent, areas };
}

/** A file's records: one per section (a file over 4 GiB has several), or one empty record for a symlink or device. */
function addFile(extent: DirectoryExtent, make: RecordMaker, identifier: string | Sized, data: FileData | null, recorded: number, systemUse: Sized): void {
  if (!data) {
    extent.add(make.record(identifier, systemUse, { extent: 0, dataLength: 0, flags: 0, recorded }));
    return;
  }
  const parts = sections(data);
  parts.forEach(([block, length], i) => {
    const flags = i < parts.length - 1 ? FLAG_MULTI_EXTENT : 0;
    extent.add(make.record(identifier, systemUse, { extent: length > 0 ? block : 0, dataLength: length, flags, recorded }));
  });
}

/** The record of a folder in a volume descriptor (its root). */
function dirRecord(identifier: Buffer, dir: { block: number; sectors: number }, recorded: number, systemUse: Buffer): DirectoryRecord {
  return record({ identifier, extent: dir.block, dataLength: dir.sectors * SECTOR_SIZE, flags: FLAG_DIRECTORY, recorded, systemUse });
}

export interface RenderedDirectory {
  extent: Buffer;
  continuation: Buffer;
}

/** A folder of the ISO 9660 (Rock Ridge) tree and its continuation blocks. */
export function renderIsoDirectory(plan: ImagePlan, dir: IsoDir): RenderedDirectory {
  const { extent, areas } = isoDirectory(plan, dir, ENCODE);
  return { extent: extent.finish(), continuation: Buffer.concat(areas.blocks) };
}

/** The sectors renderIsoDirectory will make of a folder, and of its continuation blocks, without making them. */
export function measureIsoDirectory(plan: ImagePlan, dir: IsoDir): { sectors: number; continuationSectors: number } {
  const { extent, areas } = isoDirectory(plan, dir, MEASURE);
  return { sectors: extent.sectors(), continuationSectors: areas.count };
}

function jolietDirectory(dir: JolietDir, make: RecordMaker): DirectoryExtent {
  const extent = new DirectoryExtent(make.measuring);
  const addDir = (identifier: Sized, target: JolietDir) =>
    extent.add(make.record(identifier, NO_SYSTEM_USE, { extent: target.block, dataLength: target.sectors * SECTOR_SIZE, flags: FLAG_DIRECTORY, recorded: target.node.mtime }));
  addDir(SELF_ID, dir);
  addDir(PARENT_ID, dir.parent);
  for (const child of dir.children) {
    const name = jolietNameOf(child.kind === "dir" ? child.dir : child);
    const isDirectory = child.kind === "dir";
    // Measuring needs only the identifier's length: no UCS-2 bytes.
    const identifier = make.measuring ? sized(jolietIdentifierLength(name, isDirectory)) : jolietIdentifier(name, isDirectory);
    if (child.kind === "dir") addDir(identifier, child.dir);
    else addFile(extent, make, identifier, child.data, child.node.mtime, NO_SYSTEM_USE);
  }
  return extent;
}

/** A folder of the Joliet tree. */
export function renderJolietDirectory(dir: JolietDir): Buffer {
  return jolietDirectory(dir, ENCODE).finish();
}

/** The sectors renderJolietDirectory will make of a folder. */
export function measureJolietDirectory(dir: JolietDir): number {
  return jolietDirectory(dir, MEASURE).sectors();
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
