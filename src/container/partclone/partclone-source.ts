/**
 * A partclone image as the filesystem it holds: block N is in the data
 * section at the rank of N in the bitmap (bitmap-index.ts) when the bitmap
 * marks it used, and reads as zeros otherwise, as partclone.restore leaves
 * it. dataRanges() says which blocks are used, so convert and hash skip the
 * rest.
 */
import { CorruptImageError } from "../../errors.js";
import type { BlockSource } from "../../io/block-source.js";
import { checkRange, targetBuffer } from "../../io/bounds.js";
import type { ContainerSource } from "../format.js";
import { BitmapIndex } from "./bitmap-index.js";
import { DataSection, dataSectionSize } from "./data-section.js";
import { decodePartcloneHeader, headerSizeFor, restoredSize, V2_HEADER_SIZE, type PartcloneHeader } from "./header.js";

export class PartcloneSource implements ContainerSource {
  readonly format = "partclone";
  readonly sectorSize = 512;
  readonly name: string;
  readonly size: number;
  /** Random access costs what it costs the layer below: a seekless stream stays one. */
  readonly seekable: boolean;
  private readonly fsBytes: number;

  private constructor(
    source: BlockSource,
    readonly header: PartcloneHeader,
    private readonly bitmap: BitmapIndex,
    private readonly data: DataSection,
  ) {
    this.name = source.name;
    this.size = restoredSize(header);
    this.seekable = (source as Partial<ContainerSource>).seekable ?? true;
    this.fsBytes = header.totalBlocks * header.blockSize;
  }

  /** The header and bitmap checked (their CRCs, the used-block count), the data section's size against the image. */
  static async open(source: BlockSource, onWarning?: (message: string) => void): Promise<PartcloneSource> {
    if (source.size < V2_HEADER_SIZE) throw new CorruptImageError(`${source.name}: partclone image header truncated (${source.size} of ${V2_HEADER_SIZE} bytes)`);
    const head = await source.read(0, V2_HEADER_SIZE);
    const headerSize = headerSizeFor(head);
    if (source.size < headerSize) throw new CorruptImageError(`${source.name}: partclone image header truncated (${source.size} of ${headerSize} bytes)`);
    const header = decodePartcloneHeader(headerSize === head.length ? head : await source.read(0, headerSize));

    const bitmapAt = header.headerSize;
    const bitmap = await BitmapIndex.build(source, { offset: bitmapAt, mode: header.bitmapMode, totalBlocks: header.totalBlocks });
    if (bitmap.usedBlocks !== header.usedBlocks) {
      const field = header.imageVersion === 1 ? "usedblocks (byte 56)" : "usedblocks (byte 76)";
      const message = `partclone image header: ${field} is ${header.usedBlocks}, but the bitmap marks ${bitmap.usedBlocks} blocks used`;
      // partclone.restore goes by the bitmap ("fixed used blocks count"), which old 0001 images needed; 0002 images always agree.
      if (header.imageVersion === 2) throw new CorruptImageError(message);
      onWarning?.(`${source.name}: ${message}; reading as the bitmap says, as partclone does`);
    }
    const counted = { ...header, usedBlocks: bitmap.usedBlocks };

    const { bytes, trailer } = BitmapIndex.sizeOnDisk(header.bitmapMode, header.totalBlocks);
    const dataAt = bitmapAt + bytes + trailer;
    const dataEnd = dataAt + dataSectionSize(counted);
    if (dataEnd > source.size) {
      throw new CorruptImageError(
        `${source.name}: partclone image truncated: its ${counted.usedBlocks} blocks of ${header.blockSize} bytes` +
          `${header.checksumSize ? " and their checksums" : ""} run from offset ${dataAt} to ${dataEnd}, but the image ends at ${source.size}`,
      );
    }
    if (dataEnd < source.size) onWarning?.(`${source.name}: ${source.size - dataEnd} bytes after the partclone image's data (from offset ${dataEnd}) are ignored`);
    return new PartcloneSource(source, counted, bitmap, new DataSection(source, counted, dataAt));
  }

  async read(offset: number, length: number, into?: Buffer): Promise<Buffer> {
    checkRange(this.name, this.size, offset, length);
    const out = targetBuffer(length, into);
    const end = offset + length;
    const fsEnd = Math.min(end, this.fsBytes);
    if (offset < fsEnd) {
      const { blockSize } = this.header;
      const first = Math.floor(offset / blockSize);
      let used = await this.bitmap.rank(first);
      for await (const run of this.bitmap.runs(first, Math.ceil(fsEnd / blockSize))) {
        const runAt = run.start * blockSize;
        const from = Math.max(offset, runAt);
        const to = Math.min(fsEnd, runAt + run.count * blockSize);
        if (!run.used) out.fill(0, from - offset, to - offset);
        else {
          await this.data.read(used, from - runAt, to - from, out, from - offset, run.start);
          used += run.count;
        }
      }
    }
    // Past the filesystem's blocks, up to the device's size: zeros.
    if (end > this.fsBytes) out.fill(0, Math.max(0, this.fsBytes - offset));
    return out;
  }

  async dataRanges(offset: number, length: number): Promise<Array<[number, number]>> {
    checkRange(this.name, this.size, offset, length);
    const { blockSize } = this.header;
    const fsEnd = Math.min(offset + length, this.fsBytes);
    if (offset >= fsEnd) return [];
    const ranges: Array<[number, number]> = [];
    for await (const run of this.bitmap.runs(Math.floor(offset / blockSize), Math.ceil(fsEnd / blockSize))) {
      if (!run.used) continue;
      const from = Math.max(offset, run.start * blockSize);
      ranges.push([from, Math.min(fsEnd, (run.start + run.count) * blockSize) - from]);
    }
    return ranges;
  }

  describe(): Record<string, unknown> {
    const h = this.header;
    return {
      imageVersion: h.imageVersion === 1 ? "0001" : "0002",
      partcloneVersion: h.partcloneVersion,
      filesystem: h.filesystem,
      blockSize: h.blockSize,
      totalBlocks: h.totalBlocks,
      usedBlocks: h.usedBlocks,
      checksum: h.checksum,
      blocksPerChecksum: h.checksumSize ? h.blocksPerChecksum : null,
    };
  }

  /** The caches go with the object; the source below belongs to the opener. */
  async close(): Promise<void> {}
}
