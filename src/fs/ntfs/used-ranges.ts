/**
 * The bytes an NTFS volume uses, from $Bitmap (MFT record 6): one bit per
 * cluster. No NTFS reader is needed: the boot sector gives the MFT, the
 * record gives $Bitmap's unnamed $DATA attribute and its runs, and those are
 * read 1 MiB at a time. The boot sector and its backup (in the sector after
 * the last one the volume counts, outside every cluster) are added.
 */
import { CorruptImageError, UnsupportedError } from "../../errors.js";
import type { BlockSource } from "../../io/block-source.js";
import type { ByteRange } from "../../used/range-list.js";
import { setBitRuns } from "../../used/bitmap-runs.js";
import { decodeNtfsBootSector } from "./boot-sector.js";
import { decodeDataRuns, type DataRun } from "./data-runs.js";
import { applyFixups, attributes } from "./mft-record.js";

const MFT_RECORD_BITMAP = 6;
const ATTR_DATA = 0x80;
const CHUNK = 1 << 20;

export async function* ntfsUsedRanges(source: BlockSource): AsyncGenerator<ByteRange> {
  const boot = decodeNtfsBootSector(await source.read(0, 512));
  const { clusterSize, bytesPerSector } = boot;
  const clusters = Math.floor((boot.totalSectors * bytesPerSector) / clusterSize);
  const where = "MFT record 6 ($Bitmap)";
  const record = applyFixups(await source.read(boot.mftCluster * clusterSize + MFT_RECORD_BITMAP * boot.mftRecordSize, boot.mftRecordSize), where);
  const data = [...attributes(record, where)].find((a) => a.type === ATTR_DATA && a.name === "");
  if (!data) throw new CorruptImageError(`NTFS ${where}: no $DATA attribute`);

  yield [0, bytesPerSector];
  const bitmapBytes = Math.ceil(clusters / 8);
  let bit = 0;
  const emit = function* (chunk: Buffer): Generator<ByteRange> {
    const bits = Math.min(chunk.length * 8, clusters - bit);
    for (const [a, b] of setBitRuns(chunk, bits)) yield [(bit + a) * clusterSize, (bit + b) * clusterSize];
    bit += chunk.length * 8;
  };
  if (!data.nonResident) {
    const value = data.bytes.subarray(data.bytes.readUInt16LE(0x14), data.bytes.readUInt16LE(0x14) + data.bytes.readUInt32LE(0x10));
    yield* emit(value.subarray(0, bitmapBytes));
  } else {
    for (const run of bitmapRuns(data.bytes, where, clusterSize, bitmapBytes)) {
      for (let at = 0; at < run.bytes && bit < clusters; at += CHUNK) {
        const length = Math.min(CHUNK, run.bytes - at);
        // A sparse run of $Bitmap reads as zeros: no cluster there is used.
        const chunk = run.lcn === null ? Buffer.alloc(length) : await source.read(run.lcn * clusterSize + at, length);
        yield* emit(chunk);
      }
    }
  }
  if (bit < clusters) throw new CorruptImageError(`NTFS ${where}: $Bitmap covers ${bit} of the ${clusters} clusters`);
  const backup = boot.totalSectors * bytesPerSector;
  if (backup + bytesPerSector <= source.size) yield [backup, backup + bytesPerSector];
}

/** The runs of $Bitmap's data, cut to the bytes the bitmap needs. */
function bitmapRuns(attribute: Buffer, where: string, clusterSize: number, needed: number): Array<{ lcn: number | null; bytes: number }> {
  if (attribute.readBigUInt64LE(0x10) !== 0n) {
    // The attribute continues in other records (an $ATTRIBUTE_LIST): only a hugely fragmented $Bitmap does that.
    throw new UnsupportedError(`NTFS ${where}: $Bitmap's data is split over several MFT records`);
  }
  const runs: DataRun[] = decodeDataRuns(attribute.subarray(attribute.readUInt16LE(0x20)), where);
  const out: Array<{ lcn: number | null; bytes: number }> = [];
  let left = Math.min(needed, Number(attribute.readBigUInt64LE(0x30)));
  for (const run of runs) {
    if (left <= 0) break;
    const bytes = Math.min(left, run.clusters * clusterSize);
    out.push({ lcn: run.lcn, bytes });
    left -= bytes;
  }
  return out;
}
