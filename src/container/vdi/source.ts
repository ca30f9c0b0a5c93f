/**
 * A VDI (VirtualBox) as the disk it holds: a block map of 32-bit indexes
 * into the data area, one per block; 0xFFFFFFFF (never written) and
 * 0xFFFFFFFE (discarded to zeros) read as zeros. Static and dynamic images
 * differ only in whether every block is allocated up front.
 */
import { CorruptImageError, UnsupportedError } from "../../errors.js";
import type { BlockSource } from "../../io/block-source.js";
import type { ContainerSource } from "../format.js";
import { blockExtents, type BlockState } from "../vdisk/block-walk.js";
import { type DiskExtent, MappedDisk } from "../vdisk/mapped-disk.js";
import { PagedTable } from "../vdisk/paged-table.js";
import { checkBlockPlace, MetadataRegions, OverlapCheck } from "../vdisk/table-checks.js";
import { decodeVdiHeader, VDI_HEADER_BYTES, type VdiHeader } from "./header.js";

const NOT_ALLOCATED = 0xffffffff;
const ZERO_BLOCK = 0xfffffffe;
/** 16 TiB in VirtualBox's 1 MiB blocks; a longer map is not a real one. */
const MAX_BLOCKS = 1 << 24;

export class VdiSource extends MappedDisk implements ContainerSource {
  readonly format = "vdi";
  readonly seekable = true;

  private constructor(
    private readonly file: BlockSource,
    private readonly header: VdiHeader,
    private readonly map: PagedTable,
  ) {
    super(file.name, header.diskSize, 512, undefined);
  }

  static async open(file: BlockSource): Promise<VdiSource> {
    const where = `${file.name}: VDI`;
    if (file.size < VDI_HEADER_BYTES) throw new CorruptImageError(`${where}: the file is too small for a header (${file.size} bytes)`);
    const header = decodeVdiHeader(await file.read(0, VDI_HEADER_BYTES), where);
    if (header.imageType === "undo" || header.imageType === "differencing") {
      throw new UnsupportedError(
        `${where}: a ${header.imageType} image, whose parent VirtualBox records by UUID (${header.uuidParent}) in its own media registry, not in the file; merge it first (VBoxManage clonemedium)`,
      );
    }
    const { blockSize, blockExtra, blocksInImage, diskSize } = header;
    if (blockSize < 512 || blockSize > 1 << 28 || (blockSize & (blockSize - 1)) !== 0) {
      throw new CorruptImageError(`${where}: block size ${blockSize} at byte 376 is not a power of two from 512 bytes to 256 MiB`);
    }
    if (blockExtra % 512 !== 0 || blockExtra > blockSize) throw new CorruptImageError(`${where}: block extra data of ${blockExtra} bytes at byte 380 is not whole sectors up to a block`);
    const blocks = Math.ceil(diskSize / blockSize);
    if (blocksInImage < blocks) {
      throw new CorruptImageError(`${where}: ${blocksInImage} blocks (byte 384) cannot hold a disk of ${diskSize} bytes in ${blockSize}-byte blocks`);
    }
    if (blocks > MAX_BLOCKS) throw new UnsupportedError(`${where}: ${blocks} blocks of ${blockSize} bytes (${diskSize} bytes): more than any real VDI has`);
    const metadata = new MetadataRegions().add(0, VDI_HEADER_BYTES, "the header");
    const mapBytes = blocksInImage * 4;
    metadata.checkApart(header.blockMapOffset, mapBytes, "the block map", where);
    if (header.blockMapOffset + mapBytes > file.size) {
      throw new CorruptImageError(`${where}: the block map at byte ${header.blockMapOffset} (${mapBytes} bytes) runs past the end of the file (${file.size} bytes)`);
    }
    metadata.add(header.blockMapOffset, mapBytes, "the block map");
    if (metadata.overlap(header.dataOffset, 1)) throw new CorruptImageError(`${where}: the data area at byte ${header.dataOffset} starts inside ${metadata.overlap(header.dataOffset, 1)}`);
    const map = new PagedTable(file, header.blockMapOffset, blocks, 4);
    await checkMap(file, header, map, metadata, where);
    return new VdiSource(file, header, map);
  }

  describe(): Record<string, unknown> {
    const { header } = this;
    return {
      format: "vdi",
      subformat: header.imageType,
      virtualSize: header.diskSize,
      fileSize: this.file.size,
      clusterSize: header.blockSize,
      blocksAllocated: header.blocksAllocated,
      uuid: header.uuidImage,
      ...(header.description ? { description: header.description } : {}),
    };
  }

  protected extents(offset: number, length: number): AsyncIterable<DiskExtent> {
    return blockExtents(offset, length, this.header.blockSize, (index) => {
      const entry = this.map.entry(index, (page, at) => page.readUInt32LE(at));
      return entry instanceof Promise ? entry.then((e) => this.stateOf(e)) : this.stateOf(entry);
    });
  }

  private stateOf(entry: number): BlockState {
    if (entry === NOT_ALLOCATED || entry === ZERO_BLOCK) return { kind: "zero" };
    return { kind: "data", file: this.file, host: blockHost(this.header, entry) };
  }
}

function blockHost(header: VdiHeader, entry: number): number {
  return header.dataOffset + entry * (header.blockSize + header.blockExtra) + header.blockExtra;
}

/** Every allocated block inside the file, clear of the header and map, and no two on the same place. */
async function checkMap(file: BlockSource, header: VdiHeader, map: PagedTable, metadata: MetadataRegions, where: string): Promise<void> {
  const describe = (index: number) => `${where} block map entry ${index}`;
  const overlaps = new OverlapCheck(header.blockSize, file.size, describe);
  for await (const { page, first, count } of map.scan()) {
    for (let i = 0; i < count; i++) {
      const entry = page.readUInt32LE(i * 4);
      if (entry === NOT_ALLOCATED || entry === ZERO_BLOCK) continue;
      const host = blockHost(header, entry);
      checkBlockPlace(host, header.blockSize, file.size, metadata, `${describe(first + i)} (block ${entry})`);
      overlaps.add(host, first + i);
    }
  }
  overlaps.check();
}
