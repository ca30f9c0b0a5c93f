/**
 * The VHDX metadata region: a table (signature "metadata") of items, each
 * a GUID, an offset into the region (past its first 64 KiB) and a length;
 * then the items themselves. Five are required in every VHDX: the file
 * parameters (block size, has-parent), the virtual disk size, the page 83
 * id, the logical and physical sector sizes; a differencing disk adds a
 * parent locator (key/value pairs in UTF-16LE).
 */
import { CorruptImageError } from "../../errors.js";
import { decodeGuid, encodeGuid } from "../../partition/guid.js";
import { VHDX_PARENT_LOCATOR_TYPE } from "./guids.js";

const SIGNATURE = "metadata";
const MAX_ENTRIES = 2047;
export const METADATA_TABLE_BYTES = 64 * 1024;
const MAX_ITEM_BYTES = 1024 * 1024;

export interface MetadataEntry {
  itemId: string;
  offset: number;
  length: number;
  isUser: boolean;
  isVirtualDisk: boolean;
  isRequired: boolean;
}

export interface FileParameters {
  blockSize: number;
  leaveBlocksAllocated: boolean;
  hasParent: boolean;
}

export interface ParentLocator {
  locatorType: string;
  /** parent_linkage, relative_path, volume_path, absolute_win32_path... */
  entries: Map<string, string>;
}

export function decodeMetadataTable(buf: Buffer, regionLength: number, where: string): MetadataEntry[] {
  if (buf.toString("latin1", 0, 8) !== SIGNATURE) throw new CorruptImageError(`${where}: no 'metadata' signature`);
  const count = buf.readUInt16LE(10);
  if (count > MAX_ENTRIES) throw new CorruptImageError(`${where}: ${count} metadata entries (at most ${MAX_ENTRIES})`);
  const entries: MetadataEntry[] = [];
  for (let i = 0; i < count; i++) {
    const at = 32 + i * 32;
    const flags = buf.readUInt32LE(at + 24);
    const entry: MetadataEntry = {
      itemId: decodeGuid(buf, at),
      offset: buf.readUInt32LE(at + 16),
      length: buf.readUInt32LE(at + 20),
      isUser: (flags & 1) !== 0,
      isVirtualDisk: (flags & 2) !== 0,
      isRequired: (flags & 4) !== 0,
    };
    if (entry.length > 0 && (entry.offset < METADATA_TABLE_BYTES || entry.length > MAX_ITEM_BYTES || entry.offset + entry.length > regionLength)) {
      throw new CorruptImageError(`${where}: metadata item ${entry.itemId} at ${entry.offset} (${entry.length} bytes) is not inside the region's item area`);
    }
    if (entries.some((e) => e.itemId === entry.itemId)) throw new CorruptImageError(`${where}: metadata item ${entry.itemId} is listed twice`);
    entries.push(entry);
  }
  return entries;
}

export function encodeMetadataTable(entries: MetadataEntry[]): Buffer {
  const buf = Buffer.alloc(METADATA_TABLE_BYTES);
  buf.write(SIGNATURE, 0, "latin1");
  buf.writeUInt16LE(entries.length, 10);
  entries.forEach((entry, i) => {
    const at = 32 + i * 32;
    encodeGuid(entry.itemId, buf, at);
    buf.writeUInt32LE(entry.offset, at + 16);
    buf.writeUInt32LE(entry.length, at + 20);
    buf.writeUInt32LE((entry.isUser ? 1 : 0) | (entry.isVirtualDisk ? 2 : 0) | (entry.isRequired ? 4 : 0), at + 24);
  });
  return buf;
}

export function decodeFileParameters(buf: Buffer): FileParameters {
  const flags = buf.readUInt32LE(4);
  return { blockSize: buf.readUInt32LE(0), leaveBlocksAllocated: (flags & 1) !== 0, hasParent: (flags & 2) !== 0 };
}

export function encodeFileParameters(p: FileParameters): Buffer {
  const buf = Buffer.alloc(8);
  buf.writeUInt32LE(p.blockSize, 0);
  buf.writeUInt32LE((p.leaveBlocksAllocated ? 1 : 0) | (p.hasParent ? 2 : 0), 4);
  return buf;
}

export function decodeParentLocator(buf: Buffer, where: string): ParentLocator {
  if (buf.length < 20) throw new CorruptImageError(`${where}: parent locator of ${buf.length} bytes`);
  const count = buf.readUInt16LE(18);
  const entries = new Map<string, string>();
  for (let i = 0; i < count; i++) {
    const at = 20 + i * 12;
    if (at + 12 > buf.length) throw new CorruptImageError(`${where}: parent locator entry ${i} is past the item's end`);
    const keyAt = buf.readUInt32LE(at);
    const valueAt = buf.readUInt32LE(at + 4);
    const keyLength = buf.readUInt16LE(at + 8);
    const valueLength = buf.readUInt16LE(at + 10);
    if (keyAt + keyLength > buf.length || valueAt + valueLength > buf.length) {
      throw new CorruptImageError(`${where}: parent locator entry ${i} points past the item's end`);
    }
    entries.set(buf.toString("utf16le", keyAt, keyAt + keyLength), buf.toString("utf16le", valueAt, valueAt + valueLength));
  }
  return { locatorType: decodeGuid(buf, 0), entries };
}

export function encodeParentLocator(entries: Map<string, string>): Buffer {
  const pairs = [...entries].map(([k, v]) => [Buffer.from(k, "utf16le"), Buffer.from(v, "utf16le")] as const);
  const table = Buffer.alloc(20 + pairs.length * 12);
  encodeGuid(VHDX_PARENT_LOCATOR_TYPE, table, 0);
  table.writeUInt16LE(pairs.length, 18);
  const strings: Buffer[] = [];
  let at = table.length;
  pairs.forEach(([key, value], i) => {
    table.writeUInt32LE(at, 20 + i * 12);
    table.writeUInt16LE(key.length, 20 + i * 12 + 8);
    strings.push(key);
    at += key.length;
    table.writeUInt32LE(at, 20 + i * 12 + 4);
    table.writeUInt16LE(value.length, 20 + i * 12 + 10);
    strings.push(value);
    at += value.length;
  });
  return Buffer.concat([table, ...strings]);
}
