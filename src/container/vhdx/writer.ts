/**
 * Writing a dynamic VHDX (convert --to vhdx), laid out as qemu-img and
 * Hyper-V lay theirs: the header section (identifier, two headers, two
 * region tables), an empty 1 MiB log (the header's log GUID stays zero: the
 * file is never left needing a replay), the metadata region, the BAT, then
 * payload blocks, MiB-aligned, in the order they are first written. All-zero
 * blocks stay NOT_PRESENT, as Hyper-V leaves them.
 *
 * Block size: qemu-img's choice by disk size (8 MiB up to 1 GiB, 16 MiB up
 * to 100 GiB, 32 MiB — Hyper-V's — up to 32 TiB, 64 MiB beyond), so a small
 * sparse disk does not allocate 32 MiB for every scattered write; or
 * `blockSize` (1 MiB to 256 MiB, a power of two).
 */
import { randomUUID } from "node:crypto";
import { UsageError } from "../../errors.js";
import type { FileSink } from "../../io/file-sink.js";
import { ZERO_GUID } from "../../partition/guid.js";
import { parseSize } from "../../util/units.js";
import { VERSION } from "../../version.js";
import type { ContainerSink, ContainerWriter, WriterOptions } from "../format.js";
import { AllocatingSink, type BlockPlace, createImageFile, UNPLACED } from "../vdisk/allocating-sink.js";
import { BatLayout, encodeBatEntry, MiB, PayloadState } from "./bat.js";
import { encodeFileIdentifier } from "./file-identifier.js";
import { METADATA_ITEM, REGION } from "./guids.js";
import { encodeVhdxHeader, HEADER_OFFSETS } from "./header.js";
import { encodeFileParameters, encodeMetadataTable, METADATA_TABLE_BYTES, type MetadataEntry } from "./metadata.js";
import { encodeRegionTable, REGION_TABLE_OFFSETS } from "./region-table.js";

export interface VhdxWriterOptions extends WriterOptions {
  /** Bytes per payload block (or a size such as "32MiB"). */
  blockSize?: number | string;
}

const LOGICAL_SECTOR = 512;
/** 512-byte logical sectors on 4 KiB physical ones (512e), as Hyper-V creates them. */
const PHYSICAL_SECTOR = 4096;
const LOG_OFFSET = MiB;
const LOG_LENGTH = MiB;
const METADATA_OFFSET = 2 * MiB;
const METADATA_LENGTH = MiB;
const BAT_OFFSET = 3 * MiB;
const MAX_SIZE = 64 * 1024 ** 4;
const GiB = 1024 ** 3;

/** qemu-img's default block size for a disk of `size` bytes. */
export function defaultVhdxBlockSize(size: number): number {
  if (size > 32 * 1024 * GiB) return 64 * MiB;
  if (size > 100 * GiB) return 32 * MiB;
  if (size > GiB) return 16 * MiB;
  return 8 * MiB;
}

function blockSizeOf(options: VhdxWriterOptions, size: number): number {
  if (options.blockSize === undefined) return defaultVhdxBlockSize(size);
  const blockSize = typeof options.blockSize === "number" ? options.blockSize : parseSize(options.blockSize, "VHDX block size");
  if (blockSize < MiB || blockSize > 256 * MiB || (blockSize & (blockSize - 1)) !== 0) {
    throw new UsageError(`VHDX block size must be a power of two from 1 MiB to 256 MiB, not ${options.blockSize}`);
  }
  return blockSize;
}

function virtualSizeOf(options: VhdxWriterOptions): number {
  const { size } = options;
  if (size === undefined) throw new UsageError("a VHDX image needs its virtual size up front");
  if (!Number.isSafeInteger(size) || size <= 0) throw new UsageError(`invalid VHDX virtual size ${size}`);
  const virtual = Math.ceil(size / LOGICAL_SECTOR) * LOGICAL_SECTOR;
  if (virtual > MAX_SIZE) throw new UsageError(`a VHDX holds at most 64 TiB; this disk is ${virtual} bytes`);
  return virtual;
}

export class VhdxSink extends AllocatingSink {
  readonly format = "vhdx";
  private readonly layout: BatLayout;
  private readonly batBytes: number;
  private end: number;

  private constructor(file: FileSink, size: number, blockSize: number) {
    super(file, size, blockSize);
    this.layout = new BatLayout(size, blockSize, LOGICAL_SECTOR, false);
    this.batBytes = Math.ceil((this.layout.entries * 8) / MiB) * MiB;
    this.end = BAT_OFFSET + this.batBytes;
  }

  static async create(path: string, options: VhdxWriterOptions): Promise<VhdxSink> {
    const size = virtualSizeOf(options);
    const blockSize = blockSizeOf(options, size);
    const sink = new VhdxSink(await createImageFile(path), size, blockSize);
    return sink.start(() => sink.writeStructure());
  }

  protected place(): BlockPlace {
    const data = Math.ceil(this.end / MiB) * MiB;
    this.end = data + this.blockSize;
    return { data };
  }

  protected async finish(): Promise<void> {
    const bat = Buffer.alloc(this.layout.entries * 8);
    this.hosts.forEach((host, block) => {
      if (host !== UNPLACED) encodeBatEntry({ state: PayloadState.fullyPresent, offset: host }, bat, this.layout.payloadEntry(block) * 8);
    });
    await this.file.write(BAT_OFFSET, bat);
    await this.file.setSize(this.end);
  }

  /** Everything but the BAT, which never changes once written. */
  private async writeStructure(): Promise<void> {
    const dataWriteGuid = randomUUID().toUpperCase();
    const fileWriteGuid = randomUUID().toUpperCase();
    await this.file.write(0, encodeFileIdentifier(`platter ${VERSION}`));
    for (const [i, at] of HEADER_OFFSETS.entries()) {
      const header = encodeVhdxHeader({
        sequenceNumber: BigInt(i + 1),
        fileWriteGuid,
        dataWriteGuid,
        logGuid: ZERO_GUID,
        logVersion: 0,
        version: 1,
        logLength: LOG_LENGTH,
        logOffset: LOG_OFFSET,
      });
      await this.file.write(at, header);
    }
    const regions = encodeRegionTable([
      { guid: REGION.bat, fileOffset: BAT_OFFSET, length: this.batBytes, required: true },
      { guid: REGION.metadata, fileOffset: METADATA_OFFSET, length: METADATA_LENGTH, required: true },
    ]);
    for (const at of REGION_TABLE_OFFSETS) await this.file.write(at, regions);
    await this.file.write(METADATA_OFFSET, this.metadataRegion());
  }

  private metadataRegion(): Buffer {
    const u32 = (n: number) => {
      const buf = Buffer.alloc(4);
      buf.writeUInt32LE(n);
      return buf;
    };
    const sizeItem = Buffer.alloc(8);
    sizeItem.writeBigUInt64LE(BigInt(this.size));
    const page83 = Buffer.from(randomUUID().replace(/-/g, ""), "hex");
    const items: Array<[string, Buffer, boolean]> = [
      [METADATA_ITEM.fileParameters, encodeFileParameters({ blockSize: this.blockSize, leaveBlocksAllocated: false, hasParent: false }), false],
      [METADATA_ITEM.virtualDiskSize, sizeItem, true],
      [METADATA_ITEM.page83Data, page83, true],
      [METADATA_ITEM.logicalSectorSize, u32(LOGICAL_SECTOR), true],
      [METADATA_ITEM.physicalSectorSize, u32(PHYSICAL_SECTOR), true],
    ];
    const entries: MetadataEntry[] = [];
    let offset = METADATA_TABLE_BYTES;
    for (const [itemId, bytes, isVirtualDisk] of items) {
      entries.push({ itemId, offset, length: bytes.length, isUser: false, isVirtualDisk, isRequired: true });
      offset += bytes.length;
    }
    return Buffer.concat([encodeMetadataTable(entries), ...items.map(([, bytes]) => bytes)]);
  }
}

export const vhdxWriter: ContainerWriter = {
  name: "vhdx",
  extensions: [".vhdx"],
  create: (path: string, options: VhdxWriterOptions): Promise<ContainerSink> => VhdxSink.create(path, options),
};
