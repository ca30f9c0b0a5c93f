/**
 * The decoded bytes of an indexed gzip file, with random access: a read
 * decodes the spans it touches (span-decoder.ts) through a UnitReader (LRU
 * of decoded spans, decoding ahead of sequential readers).
 */
import { availableParallelism } from "node:os";
import { CorruptImageError } from "../../errors.js";
import type { BlockSource } from "../../io/block-source.js";
import type { ContainerSource } from "../format.js";
import { UnitReader } from "../unit-reader.js";
import type { AccessIndex } from "./access-index.js";
import { decodeSpan } from "./span-decoder.js";

/** Decoded spans kept (read-ahead included). */
const CACHE_BYTES = 16 << 20;

/** How the index came to be, for describe(). */
export type GzipLayout = "platter" | "bgzf" | "stream";
export type IndexOrigin = "headers" | "inflate pass" | "cache";

export class GzipSource implements ContainerSource {
  readonly format = "gzip";
  readonly seekable = true;
  readonly sectorSize = 512;
  readonly name: string;
  readonly size: number;
  private readonly reader: UnitReader;

  constructor(
    source: BlockSource,
    readonly index: AccessIndex,
    private readonly layout: GzipLayout,
    private readonly origin: IndexOrigin,
  ) {
    this.name = source.name;
    this.size = index.size;
    const units = {
      count: index.count,
      start: (i: number) => (i < index.count ? index.point(i).decoded : index.size),
      find: (offset: number) => index.find(offset),
      decode: (i: number) => decodeSpan(source, index, i),
      isZeros: (i: number) => index.spanIsZeros(i),
    };
    this.reader = new UnitReader(units, this.name, this.size, {
      cacheBytes: CACHE_BYTES,
      largestUnit: index.largestSpan(),
      readAhead: availableParallelism(),
    });
  }

  async read(offset: number, length: number, into?: Buffer): Promise<Buffer> {
    const damage = this.index.damage;
    if (damage && offset + length > this.size && offset >= 0 && length > 0) {
      throw new CorruptImageError(
        `${this.name}: gzip data is damaged at offset ${damage.compressedOffset} (${damage.message}); the image's bytes from ${this.size} on cannot be read`,
      );
    }
    return this.reader.read(offset, length, into);
  }

  /** Spans the index saw decode to zeros are holes. */
  async dataRanges(offset: number, length: number): Promise<Array<[number, number]>> {
    return this.reader.dataRanges(offset, length);
  }

  describe(): Record<string, unknown> {
    const index = this.index;
    return {
      format: "gzip",
      seekable: true,
      layout: this.layout,
      members: index.members,
      accessPoints: index.count,
      indexedBy: this.origin,
      ...(this.layout === "platter" ? { complete: index.complete } : {}),
      ...(index.damage ? { damage: `offset ${index.damage.compressedOffset}: ${index.damage.message}` } : {}),
      ...(this.layout === "platter"
        ? {}
        : { convert: "platter convert to .gz writes members that say their size: random access with no pass over the file" }),
    };
  }

  /** The source below belongs to whoever opened it. */
  async close(): Promise<void> {}
}
