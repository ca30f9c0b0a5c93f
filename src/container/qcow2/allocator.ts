/**
 * Where the writer puts new clusters: only ever at the end of the image
 * (never into space something else may still point at after a crash).
 * Compressed clusters are packed byte after byte into clusters taken for
 * them, apart from where plain clusters are allocated, as qemu packs them
 * (its free_byte_offset): interleaving both would waste a cluster's tail at
 * every switch.
 */
export class Allocator {
  /** [packFrom, packEnd): what is left of the clusters taken for compressed data. */
  private packFrom = 0;
  private packEnd = 0;

  constructor(
    readonly clusterSize: number,
    /** Where the next cluster goes: a cluster boundary at or after the file's end. */
    private next: number,
  ) {
    this.next = Math.ceil(next / clusterSize) * clusterSize;
  }

  /** The end of everything allocated (a cluster boundary). */
  get end(): number {
    return this.next;
  }

  clusters(count: number): number {
    const start = this.next;
    this.next += count * this.clusterSize;
    return start;
  }

  /** Room for `length` bytes of compressed data, right after the last (a cluster may span two host clusters). */
  bytes(length: number): number {
    const missing = length - (this.packEnd - this.packFrom);
    if (missing > 0) {
      if (this.packEnd === this.next) {
        // The packing area ends the image: it grows in place, and the data spans into the next cluster.
        const count = Math.ceil(missing / this.clusterSize);
        this.clusters(count);
        this.packEnd += count * this.clusterSize;
      } else {
        const count = Math.ceil(length / this.clusterSize);
        this.packFrom = this.clusters(count);
        this.packEnd = this.packFrom + count * this.clusterSize;
      }
    }
    const start = this.packFrom;
    this.packFrom += length;
    return start;
  }
}
