import type { BlockSource } from "../../src/io/block-source.js";
import { checkRange } from "../../src/io/bounds.js";
import { DeviceError } from "../../src/errors.js";

/** A run of sectors [first, last] (inclusive) that misbehaves. */
export interface FaultRange {
  first: number;
  last?: number;
  /** Weak: each sector fails its first `failures` reads, then reads fine. Omitted: always fails. */
  failures?: number;
  /** Slow: each read touching the range waits this long (it still succeeds unless failing). */
  delayMs?: number;
}

/**
 * A test source that behaves like a failing disk: a read touching a bad
 * sector fails as a whole with EIO (as a real device does), weak sectors
 * recover after some failed reads, slow sectors take their time.
 * Sector numbers are in units of `sectorSize`.
 */
export class FaultySource implements BlockSource {
  readonly size: number;
  readonly sectorSize: number;
  readonly name: string;
  /** Every read attempted, for tests that count I/O. */
  readonly log: Array<[number, number]> = [];
  private readonly failuresLeft = new Map<number, number>();

  constructor(
    private readonly inner: BlockSource,
    private readonly faults: FaultRange[],
    sectorSize = inner.sectorSize,
  ) {
    this.size = inner.size;
    this.sectorSize = sectorSize;
    this.name = `faulty ${inner.name}`;
  }

  async read(offset: number, length: number, into?: Buffer): Promise<Buffer> {
    checkRange(this.name, this.size, offset, length);
    this.log.push([offset, length]);
    const first = Math.floor(offset / this.sectorSize);
    const last = Math.floor((offset + Math.max(length, 1) - 1) / this.sectorSize);
    let delay = 0;
    let failAt: number | undefined;
    for (const f of this.faults) {
      const lo = Math.max(first, f.first);
      const hi = Math.min(last, f.last ?? f.first);
      if (lo > hi) continue;
      delay = Math.max(delay, f.delayMs ?? 0);
      for (let s = lo; s <= hi; s++) {
        if (this.sectorFails(s, f)) failAt ??= s;
      }
    }
    if (delay > 0) await new Promise((r) => setTimeout(r, delay));
    if (failAt !== undefined) {
      throw new DeviceError(`${this.name}: input/output error at sector ${failAt}`, "EIO");
    }
    return this.inner.read(offset, length, into);
  }

  private sectorFails(sector: number, fault: FaultRange): boolean {
    if (fault.failures === undefined) return fault.delayMs === undefined;
    const left = this.failuresLeft.get(sector) ?? fault.failures;
    if (left <= 0) return false;
    this.failuresLeft.set(sector, left - 1);
    return true;
  }

  dataRanges(offset: number, length: number): Promise<Array<[number, number]>> {
    return this.inner.dataRanges?.(offset, length) ?? Promise.resolve([[offset, length]]);
  }

  async close(): Promise<void> {
    await this.inner.close();
  }
}
