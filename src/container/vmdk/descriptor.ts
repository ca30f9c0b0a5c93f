/**
 * The VMDK descriptor: text, in its own file or embedded in a sparse
 * extent, that says what kind of disk this is (createType), its content ids
 * (CID, parentCID), its parent (parentFileNameHint), and the extents that
 * make it up, in order:
 *
 *   RW 131072 SPARSE "disk-s001.vmdk"
 *   RW 4194304 FLAT "disk-flat.vmdk" 0
 *   RDONLY 2048 ZERO
 */
import { CorruptImageError } from "../../errors.js";

export type ExtentAccess = "RW" | "RDONLY" | "NOACCESS";

export interface ExtentLine {
  access: ExtentAccess;
  sectors: number;
  /** FLAT, SPARSE, ZERO, VMFS, VMFSSPARSE, SESPARSE... */
  type: string;
  file?: string;
  /** Sectors into a flat file where the extent starts. */
  offset: number;
}

export interface Descriptor {
  createType: string;
  cid: string;
  parentCid: string;
  parentFileNameHint?: string;
  extents: ExtentLine[];
  /** The disk database: ddb.adapterType, ddb.geometry.cylinders... */
  ddb: Record<string, string>;
}

/** parentCID of a disk without a parent. */
export const NO_PARENT_CID = "ffffffff";
/** Descriptors are small; qemu reads at most 1 MiB of one. */
export const MAX_DESCRIPTOR_BYTES = 1 << 20;
const MAX_EXTENTS = 65536;
const EXTENT_LINE = /^(RW|RDONLY|NOACCESS)\s+(\d+)\s+([A-Za-z]+)(?:\s+"([^"]*)"(?:\s+(\d+))?)?\s*$/;

/**
 * Does `head` start like a descriptor: comment and blank lines, then
 * `version=N` (qemu's test)? Never throws on binary data.
 */
export function looksLikeDescriptor(head: Buffer): boolean {
  const text = head.toString("latin1", 0, Math.min(head.length, 1024));
  for (const line of text.split("\n")) {
    const trimmed = line.replace(/\r$/, "").trim();
    if (trimmed === "" || trimmed.startsWith("#")) continue;
    return /^version=[123]$/.test(trimmed);
  }
  return false;
}

export function parseDescriptor(text: string, where: string): Descriptor {
  const fields = new Map<string, string>();
  const extents: ExtentLine[] = [];
  const ddb: Record<string, string> = {};
  for (const raw of text.split("\n")) {
    const line = raw.replace(/\r$/, "").replace(/\0.*$/s, "").trim();
    if (line === "" || line.startsWith("#")) continue;
    const extent = EXTENT_LINE.exec(line);
    if (extent) {
      const [, access, sectors, type, file, offset] = extent;
      if (extents.length >= MAX_EXTENTS) throw new CorruptImageError(`${where}: more than ${MAX_EXTENTS} extents`);
      extents.push({ access: access as ExtentAccess, sectors: Number(sectors), type: type.toUpperCase(), file, offset: Number(offset ?? 0) });
      continue;
    }
    const eq = line.indexOf("=");
    if (eq < 0) continue;
    const key = line.slice(0, eq).trim();
    const value = unquote(line.slice(eq + 1).trim());
    if (key.startsWith("ddb.")) ddb[key.slice(4)] = value;
    else fields.set(key, value);
  }
  const createType = fields.get("createType");
  if (!createType) throw new CorruptImageError(`${where}: the descriptor has no createType`);
  for (const e of extents) {
    if (!Number.isSafeInteger(e.sectors) || !Number.isSafeInteger(e.offset)) throw new CorruptImageError(`${where}: extent "${e.file ?? e.type}" has an impossible size or offset`);
    if (e.type !== "ZERO" && !e.file) throw new CorruptImageError(`${where}: ${e.type} extent of ${e.sectors} sectors names no file`);
  }
  return {
    createType,
    cid: (fields.get("CID") ?? "").toLowerCase(),
    parentCid: (fields.get("parentCID") ?? NO_PARENT_CID).toLowerCase(),
    parentFileNameHint: fields.get("parentFileNameHint"),
    extents,
    ddb,
  };
}

export function encodeDescriptor(d: Descriptor): string {
  const lines = [
    "# Disk DescriptorFile",
    "version=1",
    `CID=${d.cid}`,
    `parentCID=${d.parentCid}`,
    `createType="${d.createType}"`,
    ...(d.parentFileNameHint ? [`parentFileNameHint="${d.parentFileNameHint}"`] : []),
    "",
    "# Extent description",
    ...d.extents.map((e) => `${e.access} ${e.sectors} ${e.type}${e.file !== undefined ? ` "${e.file}"` : ""}${e.type === "FLAT" ? ` ${e.offset}` : ""}`),
    "",
    "# The Disk Data Base",
    "#DDB",
    "",
    ...Object.entries(d.ddb).map(([key, value]) => `ddb.${key} = "${value}"`),
  ];
  return `${lines.join("\n")}\n`;
}

function unquote(value: string): string {
  return value.length >= 2 && value.startsWith('"') && value.endsWith('"') ? value.slice(1, -1) : value;
}
