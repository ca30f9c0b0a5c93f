/**
 * Phase 2 of `platter iso`: decide everything before a byte is written.
 * Names (ISO 9660, Joliet; Rock Ridge keeps the real ones), which folders are
 * relocated into rr_moved (deeper than ISO 9660's 8 levels), the path table
 * order, which files share an extent (hard links), and the El Torito entries.
 * Block numbers come after, in layout.ts, once sizes are known.
 */
import { UsageError } from "../../../errors.js";
import { MAX_EXTENT_BYTES, MAX_ISO_DEPTH } from "../constants.js";
import { compareIdentifiers, isoIdentifiers } from "../iso-names.js";
import { compareJolietNames, jolietIdentifier, jolietNames } from "../joliet.js";
import type { SourceNode } from "./scan.js";

export interface IsoOptions {
  rockRidge: boolean;
  joliet: boolean;
  volumeId: string;
  /** Volume dates (Unix seconds). */
  volumeTime: number;
  /** SOURCE_DATE_EPOCH was set: atime/ctime are recorded as the mtime, so builds repeat byte for byte. */
  reproducible: boolean;
  applicationId: string;
  biosBoot?: BootImageOptions;
  efiBoot?: BootImageOptions;
  hybrid?: boolean;
}

export interface BootImageOptions {
  path: string;
  /** 512-byte sectors the firmware loads; default: 4 for BIOS (what isolinux and GRUB expect), the whole image for EFI. */
  loadSectors?: number;
}

/** One run of file bytes in the image: shared by every name of a hard link and by the Joliet tree. */
export interface FileData {
  /** Where to read it; null for the boot catalogue (generated). */
  path: Buffer | null;
  size: number;
  /** First block; sections follow contiguously. Set by the layout. */
  block: number;
  /** Names (directory records) of it in the Rock Ridge tree: its link count. */
  links: number;
  /** Patch a boot info table into bytes 8..63 (El Torito BIOS image). */
  bootInfoTable?: boolean;
  /** The file is sparse in the source: skip its holes. */
  sparse?: boolean;
}

export type IsoChild =
  | { kind: "dir"; identifier: Buffer; dir: IsoDir }
  /** A placeholder (RRIP CL) in the true parent of a folder relocated into rr_moved. */
  | { kind: "moved"; identifier: Buffer; dir: IsoDir }
  | { kind: "file"; identifier: Buffer; node: SourceNode; data: FileData }
  | { kind: "symlink" | "other"; identifier: Buffer; node: SourceNode };

export interface IsoDir {
  /** The source folder; null for rr_moved. */
  node: SourceNode | null;
  /** Rock Ridge name (rr_moved's own for the relocation folder). */
  name: Buffer;
  identifier: Buffer;
  /** Parent in the ISO 9660 hierarchy (rr_moved for a relocated folder; the root is its own). */
  parent: IsoDir;
  /** Set for a relocated folder: where it really is (RRIP PL). */
  trueParent: IsoDir | null;
  depth: number;
  children: IsoChild[];
  /** Path table number (1-based), set in path table order. */
  number: number;
  /** Set by the layout. */
  block: number;
  sectors: number;
  continuationSectors: number;
}

export type JolietChild = { kind: "dir"; identifier: Buffer; dir: JolietDir } | { kind: "file"; identifier: Buffer; data: FileData; node: SourceNode };

export interface JolietDir {
  node: SourceNode;
  identifier: Buffer;
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
  bootCatalog: FileData | null;
  /** RRIP 1.12 file serial numbers (PX): by FileData, IsoDir or SourceNode. */
  serials: Map<object, number>;
  /** Things the user should know (names changed, path table overflow). */
  warnings: string[];
}

const RELOCATION_NAMES = ["rr_moved", ".rr_moved", "rr_moved.1"];

function maxDepth(node: SourceNode, depth = 1): number {
  let max = depth;
  for (const c of node.children ?? []) if (c.kind === "dir") max = Math.max(max, maxDepth(c, depth + 1));
  return max;
}

class Planner {
  readonly serials = new Map<object, number>();
  private readonly dataByLink = new Map<string, FileData>();
  private readonly dataByNode = new Map<SourceNode, FileData>();
  private readonly dataByPath = new Map<string, FileData>();
  readonly warnings: string[] = [];
  private relocationDir: IsoDir | null = null;

  constructor(readonly options: IsoOptions) {}

  serial(key: object): number {
    let s = this.serials.get(key);
    if (s === undefined) {
      s = this.serials.size + 1;
      this.serials.set(key, s);
    }
    return s;
  }

  /** The one FileData of a file: hard links (same dev:ino) and the Joliet tree share it. */
  fileData(node: SourceNode): FileData {
    let data = this.dataByNode.get(node) ?? (node.linkKey ? this.dataByLink.get(node.linkKey) : undefined);
    if (!data) {
      data = { path: node.path, size: node.size, block: 0, links: 0 };
      if (node.linkKey) this.dataByLink.set(node.linkKey, data);
      this.dataByPath.set(node.path.toString("latin1"), data);
      this.serial(data);
    }
    this.dataByNode.set(node, data);
    return data;
  }

  /** The FileData of a tree file at this path, if the tree holds it. */
  dataAt(path: Buffer): FileData | undefined {
    return this.dataByPath.get(path.toString("latin1"));
  }

  isoTree(rootNode: SourceNode): IsoDir {
    const root = this.newDir(rootNode, rootNode.name, Buffer.from([0]), null, 1);
    root.parent = root;
    const relocate = this.options.rockRidge && maxDepth(rootNode) > MAX_ISO_DEPTH;
    if (relocate) {
      const taken = new Set((rootNode.children ?? []).map((c) => c.name.toString("latin1")));
      const name = RELOCATION_NAMES.find((n) => !taken.has(n)) ?? "rr_moved.platter";
      this.relocationDir = this.newDir(null, Buffer.from(name), Buffer.alloc(0), root, 2);
      this.serial(this.relocationDir);
    }
    const queue: IsoDir[] = [root];
    const moved: IsoDir[] = [];
    while (queue.length > 0) {
      const dir = queue.shift() as IsoDir;
      if (!dir.node) continue;
      const sources = dir.node.children ?? [];
      const naming = sources.map((c) => ({ name: c.text, isDirectory: c.kind === "dir" }));
      if (dir === root && this.relocationDir) naming.push({ name: this.relocationDir.name.toString(), isDirectory: true });
      const ids = isoIdentifiers(naming).map((id) => Buffer.from(id, "latin1"));
      sources.forEach((c, i) => {
        const identifier = ids[i];
        if (c.kind === "dir") {
          const depth = dir.depth + 1;
          if (this.relocationDir && depth > MAX_ISO_DEPTH) {
            const sub = this.newDir(c, c.name, Buffer.alloc(0), this.relocationDir, this.relocationDir.depth + 1);
            sub.trueParent = dir;
            moved.push(sub);
            dir.children.push({ kind: "moved", identifier, dir: sub });
            queue.push(sub);
          } else {
            const sub = this.newDir(c, c.name, identifier, dir, depth);
            dir.children.push({ kind: "dir", identifier, dir: sub });
            queue.push(sub);
          }
        } else if (c.kind === "file") {
          const data = this.fileData(c);
          data.links++;
          dir.children.push({ kind: "file", identifier, node: c, data });
        } else if (this.options.rockRidge) {
          this.serial(c);
          dir.children.push({ kind: c.kind, identifier, node: c });
        } else {
          this.warnings.push(`${c.path.toString()}: left out (a ${c.kind === "symlink" ? "symlink" : "special file"} needs Rock Ridge)`);
        }
      });
      if (dir === root && this.relocationDir) {
        this.relocationDir.identifier = ids[ids.length - 1];
        root.children.push({ kind: "dir", identifier: this.relocationDir.identifier, dir: this.relocationDir });
      }
    }
    if (this.relocationDir) {
      const ids = isoIdentifiers(moved.map((d) => ({ name: d.name.toString(), isDirectory: true })));
      moved.forEach((d, i) => {
        d.identifier = Buffer.from(ids[i], "latin1");
        this.relocationDir?.children.push({ kind: "dir", identifier: d.identifier, dir: d });
      });
    }
    return root;
  }

  private newDir(node: SourceNode | null, name: Buffer, identifier: Buffer, parent: IsoDir | null, depth: number): IsoDir {
    const dir: IsoDir = {
      node,
      name,
      identifier,
      parent: parent as IsoDir,
      trueParent: null,
      depth,
      children: [],
      number: 0,
      block: 0,
      sectors: 0,
      continuationSectors: 0,
    };
    if (node) this.serial(dir);
    return dir;
  }

  jolietTree(rootNode: SourceNode): JolietDir {
    const root: JolietDir = { node: rootNode, identifier: Buffer.from([0]), parent: null as unknown as JolietDir, children: [], number: 0, block: 0, sectors: 0 };
    root.parent = root;
    const queue: JolietDir[] = [root];
    while (queue.length > 0) {
      const dir = queue.shift() as JolietDir;
      const sources = (dir.node.children ?? []).filter((c) => c.kind === "dir" || c.kind === "file");
      const names = jolietNames(sources.map((c) => ({ name: c.text, isDirectory: c.kind === "dir" })));
      const order = sources.map((_, i) => i).sort((a, b) => compareJolietNames(names[a], names[b]));
      for (const i of order) {
        const c = sources[i];
        const identifier = jolietIdentifier(names[i], c.kind === "dir");
        if (c.kind === "dir") {
          const sub: JolietDir = { node: c, identifier, parent: dir, children: [], number: 0, block: 0, sectors: 0 };
          dir.children.push({ kind: "dir", identifier, dir: sub });
          queue.push(sub);
        } else {
          dir.children.push({ kind: "file", identifier, data: this.fileData(c), node: c });
        }
      }
    }
    return root;
  }
}

/** Folders in path table order: breadth first, children by identifier; numbered 1.. as they come. */
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

/** The plan for an image of `root` (from scanSources). */
export function planImage(root: SourceNode, options: IsoOptions, bootFiles: { bios?: FileData; efi?: FileData } = {}): ImagePlan {
  const planner = new Planner(options);
  const isoRoot = planner.isoTree(root);
  const isoDirs = pathTableOrder<IsoDir>(isoRoot);
  for (const d of isoDirs) sortIsoChildren(d);
  // Sorting changes the order of siblings: number again in the final order.
  const ordered = pathTableOrder<IsoDir>(isoRoot);
  if (ordered.length > 0xffff) {
    planner.warnings.push(`${ordered.length} folders: the path table can number only 65535; readers that use it (DOS) will not find the rest`);
  }
  const jolietRoot = options.joliet ? planner.jolietTree(root) : null;
  const jolietDirs = jolietRoot ? pathTableOrder<JolietDir>(jolietRoot) : [];

  const boot: BootEntryPlan[] = [];
  const bootData = (spec: BootImageOptions, given: FileData | undefined): FileData => {
    const inTree = planner.dataAt(Buffer.from(spec.path));
    return inTree ?? given ?? { path: Buffer.from(spec.path), size: 0, block: 0, links: 0 };
  };
  if (options.biosBoot) {
    const data = bootData(options.biosBoot, bootFiles.bios);
    data.bootInfoTable = true;
    boot.push({ platform: "bios", data, loadSectors: options.biosBoot.loadSectors ?? Math.min(4, Math.ceil(data.size / 512)) });
  }
  if (options.efiBoot) {
    const data = bootData(options.efiBoot, bootFiles.efi);
    const whole = Math.ceil(data.size / 512);
    boot.push({ platform: "efi", data, loadSectors: options.efiBoot.loadSectors ?? (whole > 0xffff ? 0 : whole) });
  }
  const bootCatalog: FileData | null = boot.length > 0 ? { path: null, size: 2048, block: 0, links: 0 } : null;

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
  for (const dir of ordered) for (const c of dir.children) if (c.kind === "file") add(c.data);
  for (const dir of jolietDirs) for (const c of dir.children) if (c.kind === "file") add(c.data);
  for (const f of files) {
    if (f.size > 0 && f.bootInfoTable && f.size < 64) throw new UsageError(`${f.path?.toString()}: a BIOS boot image needs at least 64 bytes`);
  }
  return {
    options,
    root: isoRoot,
    isoDirs: ordered,
    jolietRoot,
    jolietDirs,
    files,
    boot,
    bootCatalog,
    serials: planner.serials,
    warnings: planner.warnings,
  };
}

/** [block, bytes] of each section of a file: extents of at most 4 GiB - 2 KiB, back to back. */
export function sections(data: FileData): Array<[number, number]> {
  if (data.size === 0) return [[0, 0]];
  const out: Array<[number, number]> = [];
  for (let o = 0; o < data.size; o += MAX_EXTENT_BYTES) {
    out.push([data.block + o / 2048, Math.min(MAX_EXTENT_BYTES, data.size - o)]);
  }
  return out;
}

