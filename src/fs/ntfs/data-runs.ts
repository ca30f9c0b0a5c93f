/**
 * A non-resident attribute's mapping pairs (its "runlist"): runs of
 * clusters, each a header byte (low nibble: bytes of the length, high
 * nibble: bytes of the offset), the length, and the starting cluster as a
 * signed delta from the previous run's. A run without an offset is sparse.
 */
import { CorruptImageError } from "../../errors.js";

export interface DataRun {
  /** First cluster on the volume; null for a sparse run (reads as zeros). */
  lcn: number | null;
  clusters: number;
}

function readLittle(b: Buffer, at: number, size: number, signed: boolean): number {
  let value = 0;
  for (let i = size - 1; i >= 0; i--) value = value * 256 + (b[at + i] as number);
  if (signed && size > 0 && (b[at + size - 1] as number) & 0x80) value -= 2 ** (8 * size);
  return value;
}

export function decodeDataRuns(b: Buffer, where: string): DataRun[] {
  const runs: DataRun[] = [];
  let lcn = 0;
  for (let at = 0; at < b.length && b[at] !== 0; ) {
    const header = b[at] as number;
    const lengthSize = header & 0x0f;
    const offsetSize = header >> 4;
    if (lengthSize === 0 || lengthSize > 8 || offsetSize > 8 || at + 1 + lengthSize + offsetSize > b.length) {
      throw new CorruptImageError(`NTFS ${where}: bad mapping pair header 0x${header.toString(16)} at ${at}`);
    }
    const clusters = readLittle(b, at + 1, lengthSize, false);
    if (offsetSize === 0) runs.push({ lcn: null, clusters });
    else {
      lcn += readLittle(b, at + 1 + lengthSize, offsetSize, true);
      if (lcn < 0) throw new CorruptImageError(`NTFS ${where}: a run starts before cluster 0`);
      runs.push({ lcn, clusters });
    }
    at += 1 + lengthSize + offsetSize;
  }
  return runs;
}
