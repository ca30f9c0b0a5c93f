/**
 * The decoded bytes of an indexed bzip2 file, with random access by unit
 * (a stream or a block, ~900 kB of image for pbzip2's and platter's files)
 * through a UnitReader: LRU of decoded units, decoding ahead of sequential
 * readers on every core.
 */
import { availableParallelism } from "node:os";
import { CorruptImageError } from "../../errors.js";
import { checkReadBeforeDamage, describeDamage } from "../damage.js";
import type { BlockSource } from "../../io/block-source.js";
import type { ContainerSource } from "../format.js";
import { UnitReader } from "../unit-reader.js";
import { BufferPool } from "../../util/buffer-pool.js";
import { Limiter } from "../../util/limiter.js";
import { decodeCandidate } from "./index-build.js";
import type { UnitIndex } from "./unit-index.js";

/** Decoded units kept (read-ahead included). */
const CACHE_BYTES = 32 << 20;
/** Compressed bytes' memory kept for the next units (a 900 kB block compresses to about as much at worst). */
const INPUT_POOL_BYTES = 8 << 20;

export class Bzip2Source implements ContainerSource {
  readonly format = "bzip2";
  readonly seekable = true;
  readonly sectorSize = 512;
  readonly name: string;
  readonly size: number;
  private readonly reader: UnitReader;
  /**
   * Units decoded at once: one per core. libbz2 works in 3.6 MB of tables per
   * block, and four decodes (libuv's thread pool) sharing two cores' caches
   * took 1.15x the CPU.
   */
  private readonly decoders = new Limiter(availableParallelism());
  /** Compressed units on their way to the decoder. */
  private readonly inputs = new BufferPool(INPUT_POOL_BYTES);

  constructor(
    source: BlockSource,
    readonly index: UnitIndex,
    private readonly origin: "trailer" | "decoding pass" | "cache",
  ) {
    this.name = source.name;
    this.size = index.size;
    const units = {
      count: index.count,
      start: (i: number) => index.start(i),
      find: (offset: number) => index.find(offset),
      decode: (i: number, memory: Buffer) => this.decodeUnit(source, i, memory),
      decodeInto: async (i: number, out: Buffer) => {
        await this.decodeUnit(source, i, out);
      },
      isZeros: (i: number) => index.isZeros(i),
    };
    this.reader = new UnitReader(units, this.name, this.size, {
      cacheBytes: CACHE_BYTES,
      largestUnit: index.largestUnit,
      readAhead: availableParallelism(),
    });
  }

  /**
   * Unit i, decoded into `into` (exactly its size). Told to fill exactly that,
   * libbz2 cannot say whether a unit that fills it has more or was cut short
   * after its data: such a unit is decoded again, fresh, one byte larger, to
   * tell which.
   */
  private async decodeUnit(source: BlockSource, i: number, into: Buffer): Promise<Buffer> {
    const unit = this.index.unit(i);
    const target = into.subarray(0, unit.decodedSize);
    const decode = (size: number, out?: Buffer) => this.decoders.run(() => decodeCandidate(source, unit, size, out, this.inputs));
    let decoded = await decode(unit.decodedSize, target);
    if (typeof decoded !== "string" && decoded.length === unit.decodedSize) return decoded;
    if (decoded === "too large") decoded = await decode(unit.decodedSize + 1);
    const problem = {
      corrupt: "does not decode: bad data or CRC",
      truncated: "does not decode: it is cut short",
      "too large": `decodes to more than the ${unit.decodedSize} bytes the index says`,
    }[typeof decoded === "string" ? decoded : "corrupt"];
    const what = typeof decoded === "string" ? problem : `decodes to ${decoded.length} bytes, not the ${unit.decodedSize} the index says`;
    throw new CorruptImageError(`${this.name}: the bzip2 ${unit.whole ? "stream" : "block"} at offset ${Math.floor(unit.bitStart / 8)} (image offset ${this.index.start(i)}) ${what}`);
  }

  /** Units the index saw decode to zeros are holes. */
  async dataRanges(offset: number, length: number): Promise<Array<[number, number]>> {
    return this.reader.dataRanges(offset, length);
  }

  async read(offset: number, length: number, into?: Buffer): Promise<Buffer> {
    checkReadBeforeDamage(this.name, "bzip2", this.index.damage, this.size, offset, length);
    return this.reader.read(offset, length, into);
  }

  describe(): Record<string, unknown> {
    const index = this.index;
    return {
      format: "bzip2",
      seekable: true,
      streams: index.streams,
      units: index.count,
      indexedBy: this.origin,
      ...(index.damage ? { damage: describeDamage(index.damage) } : {}),
      ...(index.platter ? {} : { convert: "platter convert to .bz2 writes one stream per 900 kB and its sizes: opened with no decoding pass" }),
    };
  }

  /** The source below belongs to whoever opened it. */
  async close(): Promise<void> {}
}
