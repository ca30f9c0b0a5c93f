import type { BlockSource } from "../../src/io/block-source.js";
import { checkRange } from "../../src/io/bounds.js";
import { DeviceError, PartialCopyError } from "../../src/errors.js";

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
    protected readonly inner: BlockSource,
    private readonly faults: FaultRange[],
    sectorSize = inner.sectorSize,
  ) {
    this.size = inner.size;
    this.sectorSize = sectorSize;
    this.name = `faulty ${inner.name}`;
  }

  async read(offset: number, length: number, into?: Buffer): Promise<Buffer> {
    const failAt = await this.touch(offset, length);
    if (failAt !== undefined) throw this.failure(failAt);
    return this.inner.read(offset, length, into);
  }

  /** Log a read of [offset, offset+length) and wait as its slow sectors make it; the first sector that fails it. */
  protected async touch(offset: number, length: number): Promise<number | undefined> {
    checkRange(this.name, this.size, offset, length);
    this.log.push([offset, length]);
    const { sector, delay } = this.firstFailing(offset, length);
    if (delay > 0) await new Promise((r) => setTimeout(r, delay));
    return sector;
  }

  protected failure(sector: number): DeviceError {
    return new DeviceError(`${this.name}: input/output error at sector ${sector}`, "EIO");
  }

  private firstFailing(offset: number, length: number): { sector: number | undefined; delay: number } {
    const first = Math.floor(offset / this.sectorSize);
    const last = Math.floor((offset + Math.max(length, 1) - 1) / this.sectorSize);
    let delay = 0;
    let sector: number | undefined;
    for (const f of this.faults) {
      const lo = Math.max(first, f.first);
      const hi = Math.min(last, f.last ?? f.first);
      if (lo > hi) continue;
      delay = Math.max(delay, f.delayMs ?? 0);
      for (let s = lo; s <= hi; s++) {
        if (this.sectorFails(s, f)) sector = Math.min(sector ?? s, s);
      }
    }
    return { sector, delay };
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

/**
 * A FaultySource over a file that also copies in the kernel (copyTo), as
 * copy_file_range does over a failing disk: a copy touching a bad sector
 * writes the good bytes before it, then fails with EIO. Each copy is logged
 * as a read of its range.
 */
export class FaultyCopySource extends FaultySource {
  /** Copies asked for, and copies that went through. */
  copies = 0;
  copied = 0;

  async copyTo(offset: number, length: number, fd: number, fdOffset: number): Promise<boolean> {
    this.copies++;
    const copyTo = this.inner.copyTo?.bind(this.inner);
    if (!copyTo) return false;
    const failAt = await this.touch(offset, length);
    if (failAt !== undefined) {
      // The kernel copies up to the page that failed: the good sectors before it reach DEST, and it
      // reads nothing past that page (the log says so), then reports how much it copied.
      const good = Math.max(0, Math.floor((failAt * this.sectorSize) / 4096) * 4096 - offset);
      const pageEnd = Math.min(this.size, Math.floor((failAt * this.sectorSize) / 4096) * 4096 + 4096);
      this.log[this.log.length - 1] = [offset, Math.min(length, pageEnd - offset)];
      if (good > 0) await copyTo(offset, good, fd, fdOffset);
      const failure = this.failure(failAt);
      throw good > 0 ? new PartialCopyError(failure.message, failure.code, good) : failure;
    }
    const ok = await copyTo(offset, length, fd, fdOffset);
    if (ok) this.copied++;
    return ok;
  }
}
