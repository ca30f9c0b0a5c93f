/**
 * Pieces of one image laid end to end, as `split -b` cut it (Clonezilla's
 * sda1.ext4-ptcl-img.gz.aa, .ab...): one source over all of them. split
 * makes every piece but the last the same size, so a piece of another size
 * means one was cut short, replaced or is missing its end: refused, naming it.
 */
import { CorruptImageError } from "../errors.js";
import { type BlockSource, dataRangesOf } from "./block-source.js";
import { checkRange, targetBuffer } from "./bounds.js";

export class ConcatSource implements BlockSource {
  readonly size: number;
  readonly sectorSize: number;
  /** Split pieces are regular files (the index cache keys on their stats). */
  readonly isBlockDevice = false;
  private readonly pieceSize: number;

  /** Takes ownership of `pieces` (closes them); they must follow split's sizes. */
  constructor(
    private readonly pieces: readonly BlockSource[],
    readonly name: string,
  ) {
    if (pieces.length === 0) throw new RangeError("ConcatSource needs at least one piece");
    this.pieceSize = pieces[0].size;
    pieces.forEach((piece, i) => {
      const last = i === pieces.length - 1;
      if (last ? piece.size === 0 || piece.size > this.pieceSize : piece.size !== this.pieceSize) {
        throw new CorruptImageError(
          `${piece.name}: ${piece.size} bytes, but ${last ? "the last piece of a split image holds 1 to" : "every piece of a split image but the last holds"} ` +
            `${this.pieceSize} bytes, as ${pieces[0].name} does: a piece was cut short, replaced or does not belong`,
        );
      }
    });
    this.size = this.pieceSize * (pieces.length - 1) + pieces[pieces.length - 1].size;
    this.sectorSize = pieces[0].sectorSize;
  }

  /** The pieces [offset, offset+length) spans: [piece, offset in it, length in it]. */
  private *spans(offset: number, length: number): Generator<[BlockSource, number, number]> {
    let pos = offset;
    const end = offset + length;
    while (pos < end) {
      const i = Math.floor(pos / this.pieceSize);
      const within = pos - i * this.pieceSize;
      const n = Math.min(end - pos, this.pieceSize - within);
      yield [this.pieces[i], within, n];
      pos += n;
    }
  }

  async read(offset: number, length: number, into?: Buffer): Promise<Buffer> {
    checkRange(this.name, this.size, offset, length);
    const out = targetBuffer(length, into);
    let at = 0;
    for (const [piece, within, n] of this.spans(offset, length)) {
      await piece.read(within, n, out.subarray(at, at + n));
      at += n;
    }
    return out;
  }

  async dataRanges(offset: number, length: number): Promise<Array<[number, number]>> {
    checkRange(this.name, this.size, offset, length);
    const ranges: Array<[number, number]> = [];
    let base = offset;
    for (const [piece, within, n] of this.spans(offset, length)) {
      const shift = base - within;
      for (const [start, len] of await dataRangesOf(piece, within, n)) {
        const last = ranges.at(-1);
        if (last && last[0] + last[1] === start + shift) last[1] += len;
        else ranges.push([start + shift, len]);
      }
      base += n;
    }
    return ranges;
  }

  /** In the kernel when the range lies in one piece; the caller reads and writes otherwise. */
  async copyTo(offset: number, length: number, fd: number, fdOffset: number): Promise<boolean> {
    checkRange(this.name, this.size, offset, length);
    const [only, ...more] = this.spans(offset, length);
    if (!only || more.length > 0 || !only[0].copyTo) return false;
    return only[0].copyTo(only[1], only[2], fd, fdOffset);
  }

  async close(): Promise<void> {
    const results = await Promise.allSettled(this.pieces.map((piece) => piece.close()));
    const failed = results.find((r): r is PromiseRejectedResult => r.status === "rejected");
    if (failed) throw failed.reason;
  }
}
