/** Partition tables built in memory with platter's own encoders: inputs for codec, hostile-input and CLI tests. */
import { crc32 } from "node:zlib";
import { encodeGptEntries, encodeGptHeader, type GptEntry } from "../../src/partition/gpt.js";
import { encodeEbr, encodeMbr, type MbrEntry } from "../../src/partition/mbr.js";

export const mbrEntry = (startLba: number, sectors: number, type: number, status = 0): MbrEntry => ({ status, type, startLba, sectors });

/** A disk image as a Buffer: an MBR with two primaries and a chain of logicals, built with the encoders. */
export function buildMbrDisk(sizeSectors = 32768): Buffer {
  const disk = Buffer.alloc(sizeSectors * 512);
  encodeMbr({
    diskSignature: 0xc0ffee01,
    entries: [mbrEntry(2048, 4096, 0x0c, 0x80), mbrEntry(6144, 2048, 0x83), mbrEntry(8192, sizeSectors - 8192, 0x05)],
  }).copy(disk, 0);
  // Logicals at 8192+2048 and 8192+8192; EBR links are relative to the extended start (8192).
  encodeEbr({ logical: mbrEntry(2048, 4096, 0x83), next: mbrEntry(6144, 8192, 0x05) }).copy(disk, 8192 * 512);
  encodeEbr({ logical: mbrEntry(2048, 4096, 0x82), next: null }).copy(disk, (8192 + 6144) * 512);
  return disk;
}

/** A GPT disk as a Buffer: protective MBR, primary and backup, built with the encoders. */
export function buildGptDisk(entries: GptEntry[], sectorSize = 512, sizeBytes = 32 << 20, diskGuid = "5EED0000-0000-4000-8000-0000000000D1"): Buffer {
  const disk = Buffer.alloc(sizeBytes);
  const lastLba = sizeBytes / sectorSize - 1;
  const arraySectors = (128 * 128) / sectorSize;
  encodeMbr({ entries: [mbrEntry(1, Math.min(lastLba, 0xffffffff), 0xee)] }).copy(disk, 0);
  const array = encodeGptEntries(entries);
  const common = {
    firstUsableLba: 2 + arraySectors,
    lastUsableLba: lastLba - 1 - arraySectors,
    diskGuid,
    entryCount: 128,
    entrySize: 128,
    entriesCrc32: crc32(array),
  };
  encodeGptHeader({ ...common, currentLba: 1, backupLba: lastLba, entriesLba: 2 }, sectorSize).copy(disk, sectorSize);
  array.copy(disk, 2 * sectorSize);
  array.copy(disk, (lastLba - arraySectors) * sectorSize);
  encodeGptHeader({ ...common, currentLba: lastLba, backupLba: 1, entriesLba: lastLba - arraySectors }, sectorSize).copy(
    disk,
    lastLba * sectorSize,
  );
  return disk;
}

export const SAMPLE_GPT_ENTRIES: GptEntry[] = [
  {
    typeGuid: "C12A7328-F81F-11D2-BA4B-00A0C93EC93B",
    uniqueGuid: "5EED0000-0000-4000-8000-0000000000A1",
    firstLba: 2048,
    lastLba: 10239,
    attributes: 0n,
    name: "EFI system",
  },
  {
    typeGuid: "0FC63DAF-8483-4772-8E79-3D69D8477DE4",
    uniqueGuid: "5EED0000-0000-4000-8000-0000000000A2",
    firstLba: 10240,
    lastLba: 30719,
    attributes: (1n << 2n) | (1n << 60n) | 1n,
    name: "root ✓ ünïcode",
  },
];

