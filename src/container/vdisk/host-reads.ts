/**
 * The file reads of one guest read, gathered in guest order and issued as
 * one vectored read per run of host bytes that follow on in the same file.
 * Images are mostly laid out in guest order, and the clusters between two
 * stored ones (zeros, unallocated, compressed) are not in the file: the
 * stored clusters on either side of them are neighbours there, so a guest
 * read of a few megabytes is one system call instead of one per stretch of
 * data.
 */
import { type BlockSource, readvOf } from "../../io/block-source.js";

interface Run {
  file: BlockSource;
  host: number;
  length: number;
  dests: Buffer[];
}

export class HostReads {
  private readonly runs: Run[] = [];

  /** `dest.length` bytes of `file` at `host` go to `dest` (added in guest order). */
  add(file: BlockSource, host: number, dest: Buffer): void {
    const last = this.runs[this.runs.length - 1];
    if (last && last.file === file && last.host + last.length === host) {
      last.dests.push(dest);
      last.length += dest.length;
    } else {
      this.runs.push({ file, host, length: dest.length, dests: [dest] });
    }
  }

  /** Every run read, side by side. */
  async done(): Promise<void> {
    await Promise.all(this.runs.map(readRun));
  }
}

function readRun({ file, host, dests }: Run): Promise<unknown> {
  if (dests.length === 1) return file.read(host, (dests[0] as Buffer).length, dests[0]);
  return readvOf(file, host, dests);
}
