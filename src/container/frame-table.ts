/**
 * The frames of a compressed stream (zstd frames, xz blocks), column by
 * column in typed arrays: a million frames take 48 MB this way and 128 MB as
 * objects. A file of millions of tiny frames is a cheap thing to craft, so
 * the table also refuses to grow past MAX_FRAMES (2 TiB of image in 2 MiB
 * frames) instead of letting memory follow the file.
 */
import { CorruptImageError, UnsupportedError } from "../errors.js";

export interface Frame {
  /** Its position in the table. */
  readonly index: number;
  /** Where its compressed bytes start in the container. */
  readonly offset: number;
  readonly compressedSize: number;
  /** Where its bytes start in the decoded stream. */
  readonly start: number;
  /** Its decoded size (0 for a skippable frame). */
  readonly size: number;
  /** Format-specific: the checksum a zstd seek table gives (NaN: none); an xz block's unpadded size. */
  readonly detail: number;
  /** Format-specific: an xz block's check type. */
  readonly tag: number;
}

export const MAX_FRAMES = 1 << 20;

export class FrameTable {
  private offsets = new Float64Array(64);
  private compressedSizes = new Float64Array(64);
  private starts = new Float64Array(64);
  private sizes = new Float64Array(64);
  private details = new Float64Array(64);
  private tags = new Uint8Array(64);
  private count = 0;
  /** Decoded bytes of every frame so far: where the next one starts. */
  private end = 0;

  /** `what` names the file and the frames for messages: "disk.img.zst: zstd frames". */
  constructor(private readonly what: string) {}

  get length(): number {
    return this.count;
  }

  /** Decoded bytes in all the frames. */
  get decodedSize(): number {
    return this.end;
  }

  add(offset: number, compressedSize: number, size: number, detail = Number.NaN, tag = 0): void {
    if (this.count >= MAX_FRAMES) throw new UnsupportedError(`${this.what}: more than ${MAX_FRAMES} of them; platter indexes up to that many`);
    if (!Number.isSafeInteger(this.end + size)) throw new CorruptImageError(`${this.what}: their sizes add up to an absurd size`);
    if (this.count === this.offsets.length) this.grow();
    const i = this.count++;
    this.offsets[i] = offset;
    this.compressedSizes[i] = compressedSize;
    this.starts[i] = this.end;
    this.sizes[i] = size;
    this.details[i] = detail;
    this.tags[i] = tag;
    this.end += size;
  }

  /** Where the last frame's bytes end in the container; `ifEmpty` when there is none. */
  endOffset(ifEmpty: number): number {
    const last = this.count - 1;
    return last < 0 ? ifEmpty : (this.offsets[last] as number) + (this.compressedSizes[last] as number);
  }

  /** Keep only the first `count` frames. */
  truncate(count: number): void {
    this.count = Math.min(count, this.count);
    this.end = this.count ? this.start(this.count - 1) + this.size(this.count - 1) : 0;
  }

  get(i: number): Frame {
    return {
      index: i,
      offset: this.offsets[i] as number,
      compressedSize: this.compressedSizes[i] as number,
      start: this.starts[i] as number,
      size: this.sizes[i] as number,
      detail: this.details[i] as number,
      tag: this.tags[i] as number,
    };
  }

  start(i: number): number {
    return this.starts[i] as number;
  }

  size(i: number): number {
    return this.sizes[i] as number;
  }

  compressedSize(i: number): number {
    return this.compressedSizes[i] as number;
  }

  detail(i: number): number {
    return this.details[i] as number;
  }

  *[Symbol.iterator](): Generator<Frame> {
    for (let i = 0; i < this.count; i++) yield this.get(i);
  }

  private grow(): void {
    const n = Math.min(this.offsets.length * 2, MAX_FRAMES);
    const widen = <T extends Float64Array | Uint8Array>(a: T, make: (n: number) => T): T => {
      const b = make(n);
      b.set(a);
      return b;
    };
    this.offsets = widen(this.offsets, (k) => new Float64Array(k));
    this.compressedSizes = widen(this.compressedSizes, (k) => new Float64Array(k));
    this.starts = widen(this.starts, (k) => new Float64Array(k));
    this.sizes = widen(this.sizes, (k) => new Float64Array(k));
    this.details = widen(this.details, (k) => new Float64Array(k));
    this.tags = widen(this.tags, (k) => new Uint8Array(k));
  }
}
