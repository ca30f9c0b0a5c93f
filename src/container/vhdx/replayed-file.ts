/**
 * A VHDX file with its log replayed in memory: reads see what the file
 * would hold had the writer finished, and the file itself is never
 * touched. Later writes win: a zero run drops the sectors logged before it,
 * a sector logged after a zero run lies over it.
 */
import type { BlockSource } from "../../io/block-source.js";
import { checkRange, targetBuffer } from "../../io/bounds.js";
import { LOG_SECTOR, type LoggedWrite } from "./log.js";

export class ReplayedFile implements BlockSource {
  readonly name: string;
  readonly sectorSize: number;
  readonly size: number;
  /** File offsets of the logged sectors, sorted, and their bytes. */
  private readonly sectorOffsets: number[];
  private readonly sectors = new Map<number, Buffer>();
  /** Zero runs [start, end), sorted and merged. */
  private readonly zeros: Array<[number, number]>;

  constructor(
    private readonly file: BlockSource,
    writes: LoggedWrite[],
    lastFileOffset: number,
  ) {
    this.name = file.name;
    this.sectorSize = file.sectorSize;
    let zeros: Array<[number, number]> = [];
    for (const write of writes) {
      if (write.kind === "sector") {
        this.sectors.set(write.fileOffset, write.bytes);
      } else {
        const end = write.fileOffset + write.length;
        for (const at of this.sectors.keys()) if (at >= write.fileOffset && at < end) this.sectors.delete(at);
        zeros.push([write.fileOffset, end]);
      }
    }
    zeros = zeros.sort((a, b) => a[0] - b[0]);
    this.zeros = [];
    for (const run of zeros) {
      const last = this.zeros[this.zeros.length - 1];
      if (last && run[0] <= last[1]) last[1] = Math.max(last[1], run[1]);
      else this.zeros.push([...run]);
    }
    this.sectorOffsets = [...this.sectors.keys()].sort((a, b) => a - b);
    const lastSector = this.sectorOffsets[this.sectorOffsets.length - 1];
    const lastZero = this.zeros[this.zeros.length - 1];
    this.size = Math.max(file.size, lastFileOffset, lastSector === undefined ? 0 : lastSector + LOG_SECTOR, lastZero ? lastZero[1] : 0);
  }

  /** Sectors the replay changes (for describe()). */
  get changedSectors(): number {
    return this.sectors.size;
  }

  async read(offset: number, length: number, into?: Buffer): Promise<Buffer> {
    checkRange(this.name, this.size, offset, length);
    const out = targetBuffer(length, into);
    const end = offset + length;
    const inFile = Math.max(0, Math.min(end, this.file.size) - offset);
    if (inFile > 0) await this.file.read(offset, inFile, out.subarray(0, inFile));
    out.fill(0, inFile);
    for (const [start, stop] of this.zeros) {
      if (stop <= offset) continue;
      if (start >= end) break;
      out.fill(0, Math.max(start, offset) - offset, Math.min(stop, end) - offset);
    }
    for (let i = firstAtOrAfter(this.sectorOffsets, offset - LOG_SECTOR + 1); i < this.sectorOffsets.length; i++) {
      const at = this.sectorOffsets[i];
      if (at >= end) break;
      const bytes = this.sectors.get(at) as Buffer;
      const from = Math.max(at, offset);
      bytes.copy(out, from - offset, from - at, Math.min(at + LOG_SECTOR, end) - at);
    }
    return out;
  }

  async close(): Promise<void> {}
}

function firstAtOrAfter(sorted: number[], value: number): number {
  let lo = 0;
  let hi = sorted.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (sorted[mid] < value) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}
