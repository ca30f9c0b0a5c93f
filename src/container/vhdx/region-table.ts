/**
 * The VHDX region table, stored twice (at 192 KiB and 256 KiB): 64 KiB,
 * CRC-32C checksummed, listing where the BAT and the metadata region are.
 * An entry marked required that a reader does not know means it must not
 * open the file.
 */
import { decodeGuid, encodeGuid } from "../../partition/guid.js";
import { crc32c } from "../../util/crc32.js";
import { checksumWithoutField } from "./header.js";

export const REGION_TABLE_BYTES = 64 * 1024;
export const REGION_TABLE_OFFSETS = [192 * 1024, 256 * 1024] as const;
const SIGNATURE = "regi";
const MAX_ENTRIES = 2047;

export interface RegionEntry {
  guid: string;
  fileOffset: number;
  length: number;
  required: boolean;
}

export function regionTableProblem(buf: Buffer): string | undefined {
  if (buf.toString("latin1", 0, 4) !== SIGNATURE) return "no 'regi' signature";
  const stored = buf.readUInt32LE(4);
  const computed = checksumWithoutField(buf.subarray(0, REGION_TABLE_BYTES), 4);
  if (stored !== computed) return `CRC-32C 0x${stored.toString(16).padStart(8, "0")} should be 0x${computed.toString(16).padStart(8, "0")}`;
  if (buf.readUInt32LE(8) > MAX_ENTRIES) return `${buf.readUInt32LE(8)} entries (at most ${MAX_ENTRIES})`;
  return undefined;
}

export function decodeRegionTable(buf: Buffer): RegionEntry[] {
  const entries: RegionEntry[] = [];
  for (let i = 0; i < buf.readUInt32LE(8); i++) {
    const at = 16 + i * 32;
    entries.push({
      guid: decodeGuid(buf, at),
      fileOffset: Number(buf.readBigUInt64LE(at + 16)),
      length: buf.readUInt32LE(at + 24),
      required: (buf.readUInt32LE(at + 28) & 1) === 1,
    });
  }
  return entries;
}

export function encodeRegionTable(entries: RegionEntry[]): Buffer {
  const buf = Buffer.alloc(REGION_TABLE_BYTES);
  buf.write(SIGNATURE, 0, "latin1");
  buf.writeUInt32LE(entries.length, 8);
  entries.forEach((entry, i) => {
    const at = 16 + i * 32;
    encodeGuid(entry.guid, buf, at);
    buf.writeBigUInt64LE(BigInt(entry.fileOffset), at + 16);
    buf.writeUInt32LE(entry.length, at + 24);
    buf.writeUInt32LE(entry.required ? 1 : 0, at + 28);
  });
  buf.writeUInt32LE(crc32c(buf), 4);
  return buf;
}
