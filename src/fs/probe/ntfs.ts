/**
 * NTFS (blkid: ntfs). The boot sector gives the geometry and the serial
 * number (the UUID, 16 hex digits); the label is the $VOLUME_NAME attribute
 * of MFT record 3 ($Volume).
 */
import type { ProbeReader } from "./reader.js";
import { isPowerOfTwo, utf16Label } from "./text.js";
import type { ProbeResult } from "./types.js";

const MFT_RECORD_VOLUME = 3;
const ATTR_VOLUME_NAME = 0x60;
const ATTR_END = 0xffffffff;
const MAX_CLUSTER = 2 * 1024 * 1024;

export async function probeNtfs(r: ProbeReader): Promise<ProbeResult | null> {
  const bs = await r.read(0, 512);
  if (!bs || bs.toString("latin1", 3, 11) !== "NTFS    ") return null;
  const sectorSize = bs.readUInt16LE(0x0b);
  if (sectorSize < 256 || sectorSize > 4096 || !isPowerOfTwo(sectorSize)) return null;
  const spcRaw = bs[0x0d];
  let sectorsPerCluster: number;
  if (isPowerOfTwo(spcRaw) && spcRaw <= 128) sectorsPerCluster = spcRaw;
  else if (spcRaw >= 240 && spcRaw <= 249) sectorsPerCluster = 2 ** (256 - spcRaw);
  else return null;
  if (sectorSize * sectorsPerCluster > MAX_CLUSTER) return null;
  // Fields FAT uses must be zero on NTFS.
  if (bs.readUInt16LE(0x0e) || bs.readUInt16LE(0x11) || bs.readUInt16LE(0x13) || bs.readUInt16LE(0x16) || bs.readUInt32LE(0x20) || bs[0x10]) {
    return null;
  }
  const perRecord = bs.readInt8(0x40);
  let recordSize: number;
  if (perRecord > 0) {
    if (![1, 2, 4, 8, 16, 32, 64].includes(perRecord)) return null;
    recordSize = perRecord * sectorsPerCluster * sectorSize;
  } else {
    const shift = -perRecord;
    if (bs[0x40] < 0xe1 || bs[0x40] > 0xf7) return null;
    recordSize = 2 ** shift;
  }
  const clusters = Number(bs.readBigUInt64LE(0x28)) / sectorsPerCluster;
  const mftCluster = Number(bs.readBigUInt64LE(0x30));
  if (mftCluster > clusters || Number(bs.readBigUInt64LE(0x38)) > clusters) return null;
  const mftOffset = mftCluster * sectorsPerCluster * sectorSize;
  const mft0 = await r.read(mftOffset, 4);
  if (!mft0 || mft0.toString("latin1") !== "FILE") return null;
  const record = await r.read(mftOffset + MFT_RECORD_VOLUME * recordSize, recordSize);
  if (!record || record.toString("latin1", 0, 4) !== "FILE") return null;
  let label: string | null = null;
  const allocated = record.readUInt32LE(0x1c);
  for (let at = record.readUInt16LE(0x14); at + 22 <= recordSize && at <= allocated; ) {
    const type = record.readUInt32LE(at);
    const length = record.readUInt32LE(at + 4);
    if (!length || type === ATTR_END) break;
    if (type === ATTR_VOLUME_NAME) {
      const valueLength = record.readUInt32LE(at + 16);
      const valueOffset = record.readUInt16LE(at + 20);
      if (at + valueOffset + valueLength <= recordSize) {
        label = utf16Label(record.subarray(at + valueOffset, at + valueOffset + valueLength), false);
      }
      break;
    }
    at += length;
  }
  const serial = bs.readBigUInt64LE(0x48);
  return { filesystem: "ntfs", label, uuid: serial === 0n ? null : serial.toString(16).toUpperCase().padStart(16, "0") };
}
