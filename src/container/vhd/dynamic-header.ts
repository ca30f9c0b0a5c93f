/**
 * The dynamic disk header of a dynamic or differencing VHD (1024 big-endian
 * bytes where the footer's data offset points): where the block allocation
 * table is, the block size, and for a differencing disk who its parent is
 * (unique id, name, and up to eight platform-specific locators).
 */
import { CorruptImageError } from "../../errors.js";
import { readUint64BE } from "../../util/uint64.js";
import { VHD_EPOCH, vhdChecksum } from "./footer.js";

export const DYNAMIC_HEADER_BYTES = 1024;
const COOKIE = "cxsparse";
const HEADER_VERSION = 0x00010000;
const NO_OFFSET = 0xffffffffffffffffn;
const LOCATORS_AT = 576;
const LOCATOR_BYTES = 24;
const PARENT_NAME_BYTES = 512;

export interface ParentLocator {
  /** "W2ru" (relative Windows path), "W2ku" (absolute Windows path), "MacX" (file URL), "Mac " (an alias record)... */
  platformCode: string;
  /** Space reserved for the locator's data, in the unit the writer chose (sectors by the spec, bytes by Windows). */
  dataSpace: number;
  /** Bytes of locator data. */
  dataLength: number;
  dataOffset: number;
}

export interface DynamicHeader {
  tableOffset: number;
  maxTableEntries: number;
  blockSize: number;
  parentUniqueId: Buffer;
  /** Unix seconds. */
  parentTimestamp: number;
  parentName: string;
  parentLocators: ParentLocator[];
}

export function decodeDynamicHeader(buf: Buffer, where: string): DynamicHeader {
  if (buf.length < DYNAMIC_HEADER_BYTES || buf.toString("latin1", 0, 8) !== COOKIE) {
    throw new CorruptImageError(`${where}: no 'cxsparse' dynamic disk header there`);
  }
  const stored = buf.readUInt32BE(36);
  const computed = vhdChecksum(buf.subarray(0, DYNAMIC_HEADER_BYTES), 36);
  if (stored !== computed) {
    throw new CorruptImageError(`${where}: dynamic disk header checksum 0x${stored.toString(16).padStart(8, "0")} should be 0x${computed.toString(16).padStart(8, "0")}`);
  }
  const parentLocators: ParentLocator[] = [];
  for (let i = 0; i < 8; i++) {
    const at = LOCATORS_AT + i * LOCATOR_BYTES;
    if (buf.readUInt32BE(at) === 0) continue;
    parentLocators.push({
      platformCode: buf.toString("latin1", at, at + 4),
      dataSpace: buf.readUInt32BE(at + 4),
      dataLength: buf.readUInt32BE(at + 8),
      dataOffset: readUint64BE(buf, at + 16, `${where}: parent locator ${i} data offset`),
    });
  }
  return {
    tableOffset: readUint64BE(buf, 16, `${where}: BAT offset`),
    maxTableEntries: buf.readUInt32BE(28),
    blockSize: buf.readUInt32BE(32),
    parentUniqueId: Buffer.from(buf.subarray(40, 56)),
    parentTimestamp: buf.readUInt32BE(56) + VHD_EPOCH,
    parentName: utf16beUntilNul(buf.subarray(64, 64 + PARENT_NAME_BYTES)),
    parentLocators,
  };
}

export function encodeDynamicHeader(header: DynamicHeader): Buffer {
  const buf = Buffer.alloc(DYNAMIC_HEADER_BYTES);
  buf.write(COOKIE, 0, "latin1");
  buf.writeBigUInt64BE(NO_OFFSET, 8);
  buf.writeBigUInt64BE(BigInt(header.tableOffset), 16);
  buf.writeUInt32BE(HEADER_VERSION, 24);
  buf.writeUInt32BE(header.maxTableEntries, 28);
  buf.writeUInt32BE(header.blockSize, 32);
  header.parentUniqueId.copy(buf, 40, 0, 16);
  buf.writeUInt32BE(Math.max(0, header.parentTimestamp - VHD_EPOCH) >>> 0, 56);
  const name = Buffer.from(header.parentName, "utf16le").swap16();
  name.copy(buf, 64, 0, Math.min(name.length, PARENT_NAME_BYTES));
  header.parentLocators.slice(0, 8).forEach((locator, i) => {
    const at = LOCATORS_AT + i * LOCATOR_BYTES;
    buf.write(locator.platformCode, at, "latin1");
    buf.writeUInt32BE(locator.dataSpace, at + 4);
    buf.writeUInt32BE(locator.dataLength, at + 8);
    buf.writeBigUInt64BE(BigInt(locator.dataOffset), at + 16);
  });
  buf.writeUInt32BE(vhdChecksum(buf, 36), 36);
  return buf;
}

function utf16beUntilNul(bytes: Buffer): string {
  let end = 0;
  while (end + 1 < bytes.length && (bytes[end] !== 0 || bytes[end + 1] !== 0)) end += 2;
  return Buffer.from(bytes.subarray(0, end)).swap16().toString("utf16le");
}
