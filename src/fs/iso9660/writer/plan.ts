/**
 * Phase 2 of `platter iso`: decide everything before a byte is written.
 * Names (ISO 9660, Joliet; Rock Ridge keeps the real ones), which folders are
 * relocated into rr_moved (deeper than ISO 9660's 8 levels), the path table
 * order, which files share an extent (hard links), and the El Torito entries.
 * Block numbers come after, in layout.ts, once sizes are known.
 */
import { UsageError } from "../../../errors.js";
import { MAX_EXTENT_BYTES, MAX_ISO_DEPTH, SECTOR_SIZE } from "../constants.js";
import { compareIdentifiers, isoIdentifiers } from "../iso-names.js";
import { compareJolietNames, jolietNames } from "../joliet.js";
import { nameText, showPath, sourcePath, type SourceNode } from "./scan.js";

export interface IsoOptions {
  rockRidge: boolean;
  joliet: boolean;
  volumeId: string;
  /** Volume dates (Unix seconds). */
  volumeTime: number;
  /** SOURCE_DATE_EPOCH was set: atime/ctime are recorded as the mtime, so builds repeat byte for byte. */
  reproducible: boolean;
  applicationId: string;
}

export interface BootImageOptions {
  path: string;
  /** 512-byte sectors the firmware loads; default: 4 for BIOS (what isolinux and GRUB expect), the whole image for EFI. */
  loadSectors?: number;
}

/** One run of file bytes in the image: shared by every name of a hard link and by the Joliet tree. */
export interface FileData {
  /** The file in the tree, or null for a boot image from outside the source folders. */
  node: SourceNode | null;
  /** Where a boot image from outside the tree is. */
  externalPath?: Buffer;
  size: number;
  /** First block; sections follow contiguously. Set by the layout. */
  block: number;
  /** Names (directory records) of it in the Rock Ridge tree: its link count. */
  links: number;
  /** RRIP 1.12 file serial number (PX). */
  serial: number;
  /** Patch a boot info table into bytes 8..63 (El Torito BIOS image). */
  bootInfoTable?: boolean;
}

export type IsoChild =
  | { kind: "dir"; identifier: string; dir: IsoDir }
  /** A placeholder (RRIP CL) in the true parent of a folder relocated into rr_moved. */
  | { kind: "moved"; identifier: string; dir: IsoDir }
  | { kind: "file"; identifier: string; node: SourceNode; data: FileData }
  | { kind: "symlink" | "other"; identifier: string; node: SourceNode };

export interface IsoDir {
  /** The source folder; null for rr_moved. */
  node: SourceNode | null;
  /** rr_moved's Rock Ridge name (a source folder's is its node's). */
  ownName?: string;
  /** ISO 9660 identifier (latin1). */
  identifier: string;
  /** Parent in the ISO 9660 hierarchy (rr_moved for a relocated folder; the root is its own). */
  parent: IsoDir;
  /** Set for a relocated folder: where it really is (RRIP PL). */
  trueParent: IsoDir | null;
  depth: number;
  children: IsoChild[];
  serial: number;
  /** Path table number (1-based), set in path table order. */
  number: number;
  /** Set by the layout. */
  block: number;
  sectors: number;
  continuationSectors: number;
}

/** `name` is the Joliet name, or null when it is the real name (most are: this saves memory). */
export type JolietChild =
  | { kind: "dir"; name: string | null; dir: JolietDir }
  | { kind: "file"; name: string | null; data: FileData; node: SourceNode };

export interface JolietDir {
  node: SourceNode;
  /** Joliet name, null when it is the real name (the root's is ""). */
  name: string | null;
  parent: JolietDir;
  children: JolietChild[];
  number: number;
  block: number;
  sectors: number;
}

export interface BootEntryPlan {
  platform: "bios" | "efi";
  data: FileData;
  loadSectors: number;
}

export interface ImagePlan {
  options: IsoOptions;
  root: IsoDir;
  /** Every ISO 9660 folder in path table order (by level, parent, name). */
  isoDirs: IsoDir[];
  jolietRoot: JolietDir | null;
  jolietDirs: JolietDir[];
  /** File data in the order it is written: boot images first, then by folder. */
  files: FileData[];
  boot: BootEntryPlan[];
  /** The catalogue's block (set by the layout). */
  bootCatalog: { block: number } | null;
  /** Serial numbers of symlinks and special files (files and folders carry their own). */
  serials: Map<SourceNode, number>;
  /** Things the user should know (entries left out, path table overflow). */
  warnings: string[];
}

/** The Joliet name of a child or folder. */
export function jolietNameOf(entry: { name: string | null; node: SourceNode }): string {
  return entry.name ?? nameText(entry.node);
}

/** Where a file's bytes come from. */
export function dataPath(data: FileData): Buffer {
  return data.node ? sourcePath(data.node) : (data.externalPath as Buffer);
}

/** A boot image the planner places: the tree's own file when it is one, else stored apart. */
export interface BootImage {
  spec: BootImageOptions;
  /** The tree node of the same file, when the image lies inside a source folder. */
  node: SourceNode | null;
  size: number;
}

const RELOCATION_NAMES = ["rr_moved", ".rr_moved", "rr_moved.1"];

function maxDepth(node: SourceNode, depth = 1): number {
  let max = depth;
  for (const c of node.children ?? []) if (c.kind === "dir") max = Math.max(max, maxDepth(c, depth + 1));
  return max;
}

class Planner {
  private serialCounter = 0;
  readonly serials = new Map<SourceNode, number>();
  private readonly dataByLink = new Map<string, FileData>();
  readonly warnings: string[] = [];
  private relocationDir: IsoDir | null = null;

  constructor(readonly options: IsoOptions) {}

  nextSerial(): number {
    return ++this.serialCounter;
  }

  /** The one FileData of a file: hard links (same dev:ino) share it. */
  fileData(node: SourceNode): FileData {
    let data = node.linkKey ? this.dataByLink.get(node.linkKey) : undefined;
    if (!data) {
      data = { node, size: node.size, block: 0, links: 0, serial: this.nextSerial() };
      if (node.linkKey) this.dataByLink.set(node.linkKey, data);
    }
    return data;
  }

  isoTree(rootNode: SourceNode): IsoDir {
    const root = this.newDir(rootNode, "\0", null, 1);
    root.parent = root;
    if (this.options.rockRidge && maxDepth(rootNode) > MAX_ISO_DEPTH) {
      const taken = new Set((rootNode.children ?? []).map(nameText));
      const name = RELOCATION_NAMES.find((n) => !taken.has(n)) ?? "rr_moved.platter";
      this.relocationDir = this.newDir(null, "", root, 2);
      this.relocationDir.ownName = name;
    }
    const queue: IsoDir[] = [root];
    const moved: IsoDir[] = [];
    for (let q = 0; q < queue.length; q++) {
      const dir = queue[q];
      if (!dir.node) continue;
      const sources = dir.node.children ?? [];
      const naming = sources.map((c) => ({ name: nameText(c), isDirectory: c.kind === "dir" }));
      const relocation = dir === root ? this.relocationDir : null;
      if (relocation) naming.push({ name: relocation.ownName as string, isDirectory: true });
      const ids = isoIdentifiers(naming);
      sources.forEach((c, i) => {
        const identifier = ids[i];
        if (c.kind === "dir") {
          const depth = dir.depth + 1;
          if (this.relocationDir && depth > MAX_ISO_DEPTH) {
            const sub = this.newDir(c, "", this.relocationDir, this.relocationDir.depth + 1);
            sub.trueParent = dir;
            moved.push(sub);
            dir.children.push({ kind: "moved", identifier, dir: sub });
            queue.push(sub);
          } else {
            const sub = this.newDir(c, identifier, dir, depth);
            dir.children.push({ kind: "dir", identifier, dir: sub });
            queue.push(sub);
          }
        } else if (c.kind === "file") {
          const data = this.fileData(c);
          data.links++;
          dir.children.push({ kind: "file", identifier, node: c, data });
        } else if (this.options.rockRidge) {
          this.serials.set(c, this.nextSerial());
          dir.children.push({ kind: c.kind, identifier, node: c });
        } else {
          this.warnings.push(`left out ${showPath(sourcePath(c))}: a ${c.kind === "symlink" ? "symlink" : "special file"} needs Rock Ridge`);
        }
      });
      if (relocation) {
        relocation.identifier = ids[ids.length - 1];
        root.children.push({ kind: "dir", identifier: relocation.identifier, dir: relocation });
      }
    }
    if (this.relocationDir) {
      const ids = isoIdentifiers(moved.map((d) => ({ name: nameText(d.node as SourceNode), isDirectory: true })));
      moved.forEach((d, i) => {
        d.identifier = ids[i];
        this.relocationDir?.children.push({ kind: "dir", identifier: d.identifier, dir: d });
      });
    }
    return root;
  }

  private newDir(node: SourceNode | null, identifier: string, parent: IsoDir | null, depth: number): IsoDir {
    return {
      node,
      identifier,
      parent: parent as IsoDir,
      trueParent: null,
      depth,
      children: [],
      serial: this.nextSerial(),
      number: 0,
      block: 0,
      sectors: 0,
      continuationSectors: 0,
    };
  }

  /**
   * The Joliet tree: the true hierarchy (no relocation), files and folders
   * only. Built from the ISO 9660 tree, whose file entries already hold the
   * FileData the Joliet records share.
   */
  jolietTree(isoRoot: IsoDir): JolietDir {
    const root: JolietDir = { node: isoRoot.node as SourceNode, name: "", parent: null as unknown as JolietDir, children: [], number: 0, block: 0, sectors: 0 };
    root.parent = root;
    const queue: Array<[JolietDir, IsoDir]> = [[root, isoRoot]];
    for (let q = 0; q < queue.length; q++) {
      const [dir, iso] = queue[q];
      const entries: Array<{ kind: "dir"; node: SourceNode; iso: IsoDir } | { kind: "file"; node: SourceNode; data: FileData }> = [];
      for (const c of iso.children) {
        if ((c.kind === "dir" || c.kind === "moved") && c.dir.node) entries.push({ kind: "dir", node: c.dir.node, iso: c.dir });
        else if (c.kind === "file") entries.push({ kind: "file", node: c.node, data: c.data });
      }
      const names = jolietNames(entries.map((e) => ({ name: nameText(e.node), isDirectory: e.kind === "dir" })));
      const order = entries.map((_, i) => i).sort((a, b) => compareJolietNames(names[a], names[b]));
      for (const i of order) {
        const e = entries[i];
        const name = names[i] === nameText(e.node) ? null : names[i];
        if (e.kind === "dir") {
          const sub: JolietDir = { node: e.node, name, parent: dir, children: [], number: 0, block: 0, sectors: 0 };
          dir.children.push({ kind: "dir", name, dir: sub });
          queue.push([sub, e.iso]);
        } else {
          dir.children.push({ kind: "file", name, data: e.data, node: e.node });
        }
      }
    }
    return root;
  }
}

/** Folders in path table order: breadth first, children in record order; numbered 1.. as they come. */
export function pathTableOrder<D extends { children: Array<{ kind: string; dir?: D }>; number: number }>(root: D): D[] {
  const order: D[] = [root];
  for (let i = 0; i < order.length; i++) {
    order[i].number = i + 1;
    for (const c of order[i].children) if (c.kind === "dir" && c.dir) order.push(c.dir);
  }
  return order;
}

function sortIsoChildren(dir: IsoDir): void {
  dir.children.sort((a, b) => compareIdentifiers(a.identifier, b.identifier));
}

export interface BootPlanInput {
  bios?: BootImage;
  efi?: BootImage;
}

/** The plan for an image of `root` (from scanSources). */
export function planImage(root: SourceNode, options: IsoOptions, bootImages: BootPlanInput = {}): ImagePlan {
  const planner = new Planner(options);
  const isoRoot = planner.isoTree(root);
  for (const d of pathTableOrder<IsoDir>(isoRoot)) sortIsoChildren(d);
  // Sorting changed the order of siblings: number them in the final order.
  const isoDirs = pathTableOrder<IsoDir>(isoRoot);
  if (isoDirs.length > 0xffff) {
    planner.warnings.push(`${isoDirs.length} folders: a path table numbers at most 65535, readers that use it (DOS) miss the rest`);
  }
  const jolietRoot = options.joliet ? planner.jolietTree(isoRoot) : null;
  const jolietDirs = jolietRoot ? pathTableOrder<JolietDir>(jolietRoot) : [];

  const boot: BootEntryPlan[] = [];
  const inTree = (node: SourceNode | null): FileData | undefined => {
    for (const dir of isoDirs) for (const c of dir.children) if (c.kind === "file" && c.node === node) return c.data;
    return undefined;
  };
  const bootData = (image: BootImage): FileData =>
    inTree(image.node) ?? { node: null, externalPath: Buffer.from(image.spec.path), size: image.size, block: 0, links: 0, serial: planner.nextSerial() };
  if (bootImages.bios) {
    const data = bootData(bootImages.bios);
    if (data.size < 64) throw new UsageError(`${bootImages.bios.spec.path}: a BIOS boot image needs at least 64 bytes`);
    data.bootInfoTable = true;
    boot.push({ platform: "bios", data, loadSectors: bootImages.bios.spec.loadSectors ?? Math.min(4, Math.ceil(data.size / 512)) });
  }
  if (bootImages.efi) {
    const data = bootData(bootImages.efi);
    const whole = Math.ceil(data.size / 512);
    boot.push({ platform: "efi", data, loadSectors: bootImages.efi.spec.loadSectors ?? (whole > 0xffff ? 0 : whole) });
  }

  // Data order: boot images, then every file the first time a folder (in path table order) names it.
  const files: FileData[] = [];
  const placed = new Set<FileData>();
  const add = (d: FileData) => {
    if (!placed.has(d)) {
      placed.add(d);
      files.push(d);
    }
  };
  for (const b of boot) add(b.data);
  for (const dir of isoDirs) for (const c of dir.children) if (c.kind === "file") add(c.data);
  for (const dir of jolietDirs) for (const c of dir.children) if (c.kind === "file") add(c.data);
  return {
    options,
    root: isoRoot,
    isoDirs,
    jolietRoot,
    jolietDirs,
    files,
    boot,
    bootCatalog: boot.length > 0 ? { block: 0 } : null,
    serials: planner.serials,
    warnings: planner.warnings,
  };
}

/** [block, bytes] of each section of a file: extents of at most 4 GiB - 2 KiB, back to back. */
export function sections(data: FileData): Array<[number, number]> {
  if (data.size === 0) return [[0, 0]];
  const out: Array<[number, number]> = [];
  for (let o = 0; o < data.size; o += MAX_EXTENT_BYTES) {
    out.push([data.block + o / SECTOR_SIZE, Math.min(MAX_EXTENT_BYTES, data.size - o)]);
  }
  return out;
}
