/**
 * A VHD as the disk it holds. Fixed: the disk's bytes, then the footer.
 * Dynamic: a block allocation table (BAT) of 32-bit sector numbers, each
 * allocated block a sector bitmap then the block's bytes; unallocated
 * blocks read as zeros. Differencing: the same, but unallocated blocks and
 * sectors whose bitmap bit is clear come from the parent VHD.
 *
 * The footer at the end is the one that counts; when it is damaged the copy
 * at offset 0 (dynamic and differencing disks have one) stands in, with a
 * warning. The size is the footer's current size, as Hyper-V and Windows
 * read it (qemu goes by the CHS geometry for images made by Virtual PC or
 * by itself without force_size: see describe()).
 */
import { CorruptImageError, DeviceError, UnsupportedError } from "../../errors.js";
import type { BlockSource } from "../../io/block-source.js";
import { SliceSource } from "../../io/slice-source.js";
import { LruCache } from "../../util/lru.js";
import type { ContainerContext, ContainerSource } from "../format.js";
import { blockExtents, type BlockState } from "../vdisk/block-walk.js";
import { type DiskExtent, MappedDisk } from "../vdisk/mapped-disk.js";
import { PagedTable } from "../vdisk/paged-table.js";
import { openFirstRelated } from "../vdisk/related.js";
import { blockPlaceProblem, MetadataRegions, OverlapCheck, openerSink, type ProblemSink } from "../vdisk/table-checks.js";
import { decodeDynamicHeader, DYNAMIC_HEADER_BYTES, type DynamicHeader } from "./dynamic-header.js";
import { decodeVhdFooter, FOOTER_BYTES, footerProblem, formatUniqueId, hasVhdCookie, type VhdFooter } from "./footer.js";
import { chsSectors } from "./geometry.js";
import { locatorPath, parentCandidates } from "./parent-locator.js";

const UNALLOCATED = 0xffffffff;
/** More blocks than the largest VHD (2040 GiB) has in 512 KiB blocks: a table this long is not a real one. */
const MAX_BLOCKS = 1 << 22;
/** Sector bitmaps kept (a differencing disk reads one per block touched). */
const BITMAPS_KEPT = 256;

/** The footer that counts, and where it was found. */
export interface FoundFooter {
  footer: VhdFooter;
  /** Byte offset of the footer used. */
  at: number;
  /** The end of the file holds a valid footer (it is then metadata no block may overlap). */
  endValid: boolean;
}

/** Read the footer: the one at the end, else (with a warning) the copy at offset 0. */
export async function readVhdFooter(file: BlockSource, onWarning?: (m: string) => void): Promise<FoundFooter> {
  if (file.size < FOOTER_BYTES) throw new CorruptImageError(`${file.name}: too small for a VHD (${file.size} bytes)`);
  const endAt = file.size - FOOTER_BYTES;
  const end = await file.read(endAt, FOOTER_BYTES);
  const endProblem = footerProblem(end);
  if (!endProblem) return { footer: decodeVhdFooter(end, `${file.name}: VHD footer at byte ${endAt}`), at: endAt, endValid: true };
  const head = await file.read(0, FOOTER_BYTES);
  const headProblem = footerProblem(head);
  if (headProblem) {
    // Neither is valid: report the one that at least looks like a footer.
    const [at, problem] = hasVhdCookie(end) || !hasVhdCookie(head) ? [endAt, endProblem] : [0, headProblem];
    throw new CorruptImageError(`${file.name}: VHD footer at byte ${at}: ${problem}`);
  }
  const footer = decodeVhdFooter(head, `${file.name}: VHD footer copy at byte 0`);
  if (footer.diskType === "fixed") throw new CorruptImageError(`${file.name}: VHD footer copy at byte 0 describes a fixed disk, which has no copy there`);
  onWarning?.(`${file.name}: the VHD footer at the end (byte ${endAt}) is damaged (${endProblem}); using its copy at offset 0`);
  return { footer, at: 0, endValid: false };
}

/** A fixed VHD: its first current-size bytes, read straight from the file. */
export class FixedVhdSource extends SliceSource implements ContainerSource {
  readonly format = "vhd";
  readonly seekable = true;

  constructor(
    file: BlockSource,
    private readonly found: FoundFooter,
  ) {
    super(file, 0, found.footer.currentSize, file.name, 512);
  }

  describe(): Record<string, unknown> {
    return { ...describeFooter(this.found, this.parent), subformat: "fixed" };
  }
}

export class DynamicVhdSource extends MappedDisk implements ContainerSource {
  readonly format = "vhd";
  readonly seekable = true;
  private readonly bitmapBytes: number;
  private readonly bitmaps = new LruCache<number, Promise<Buffer>>(BITMAPS_KEPT);

  private constructor(
    private readonly file: BlockSource,
    private readonly found: FoundFooter,
    private readonly header: DynamicHeader,
    private readonly bat: PagedTable,
    parent: BlockSource | undefined,
    private readonly parentFile: string | undefined,
    /** The parent info's backing chain follows: the one found, or (not opened) the first name it would be looked for by. */
    private readonly backingFile: string | undefined,
  ) {
    super(file.name, found.footer.currentSize, 512, parent);
    this.bitmapBytes = sectorBitmapBytes(header.blockSize);
  }

  static async open(file: BlockSource, found: FoundFooter, context: ContainerContext): Promise<DynamicVhdSource> {
    const { footer } = found;
    const sink = openerSink(context.lenient);
    const layout = await readDynamicLayout(file, found, sink);
    if (!layout) throw sink.fatal();
    const { header, bat, locatorPaths } = layout;
    let parent: BlockSource | undefined;
    let parentFile: string | undefined;
    if (footer.diskType === "differencing" && !context.noBacking) {
      ({ parent, name: parentFile } = await openParent(file, header, locatorPaths, context));
      if (parent.size !== footer.currentSize) {
        context.onWarning?.(`${file.name}: the parent VHD ${parentFile} holds ${parent.size} bytes, the differencing disk ${footer.currentSize}`);
      }
    }
    const backingFile = footer.diskType === "differencing" ? (parentFile ?? parentCandidates(locatorPaths, header.parentName)[0]) : undefined;
    return new DynamicVhdSource(file, found, header, bat, parent, parentFile, backingFile);
  }

  describe(): Record<string, unknown> {
    const { header, found } = this;
    return {
      ...describeFooter(found, this.file),
      subformat: found.footer.diskType,
      blockSize: header.blockSize,
      ...(found.footer.diskType === "differencing"
        ? { parentName: header.parentName, parentUniqueId: formatUniqueId(header.parentUniqueId), parentFile: this.parentFile ?? null, backingFile: this.backingFile ?? null }
        : {}),
    };
  }

  protected extents(offset: number, length: number): AsyncIterable<DiskExtent> {
    return blockExtents(offset, length, this.header.blockSize, (index) => this.blockState(index));
  }

  private blockState(index: number): BlockState | Promise<BlockState> {
    const sector = this.bat.entry(index, (page, at) => page.readUInt32BE(at));
    return sector instanceof Promise ? sector.then((s) => this.stateOf(s)) : this.stateOf(sector);
  }

  private stateOf(sector: number): BlockState | Promise<BlockState> {
    const differencing = this.found.footer.diskType === "differencing";
    if (sector === UNALLOCATED) return { kind: differencing ? "parent" : "zero" };
    const start = sector * 512;
    const host = start + this.bitmapBytes;
    // A dynamic disk's bitmap only says which sectors were written; those never written are zeros in the block (as qemu reads them).
    if (!differencing) return { kind: "data", file: this.file, host };
    return this.bitmap(start).then((bitmap) => ({ kind: "sectors", file: this.file, host, bitmap, firstBit: 0, sectorSize: 512, msbFirst: true }));
  }

  private bitmap(at: number): Promise<Buffer> {
    let pending = this.bitmaps.get(at);
    if (!pending) {
      pending = this.file.read(at, this.bitmapBytes);
      pending.catch(() => this.bitmaps.delete(at));
      this.bitmaps.set(at, pending);
    }
    return pending;
  }
}

/** What a dynamic or differencing VHD's tables say, once walked. */
export interface DynamicLayout {
  header: DynamicHeader;
  bat: PagedTable;
  /** The parent locators' paths, by platform. */
  locatorPaths: Array<{ platformCode: string; path: string }>;
}

/**
 * Read and walk a dynamic VHD's structure: the dynamic header, the BAT (in
 * the file, apart from the footers and header), the parent locators and
 * every block's place. Each problem goes to `sink` (the opener's throws the
 * first); undefined when one leaves nothing further to walk.
 */
export async function readDynamicLayout(file: BlockSource, found: FoundFooter, sink: ProblemSink): Promise<DynamicLayout | undefined> {
  const { footer } = found;
  const where = `${file.name}: VHD`;
  if (footer.dataOffset === null) return void sink(`${where} footer of a ${footer.diskType} disk has no dynamic header offset`);
  const disk: [number, number] = [0, footer.currentSize];
  const metadata = new MetadataRegions();
  if (found.endValid) metadata.add(file.size - FOOTER_BYTES, FOOTER_BYTES, "the footer");
  if (hasVhdCookie(await file.read(0, Math.min(8, file.size)))) metadata.add(0, FOOTER_BYTES, "the footer copy");
  const headerApart = metadata.apartProblem(footer.dataOffset, DYNAMIC_HEADER_BYTES, "the dynamic disk header", where);
  if (headerApart) sink(headerApart);
  if (footer.dataOffset + DYNAMIC_HEADER_BYTES > file.size) {
    return void sink(`${where} dynamic disk header at byte ${footer.dataOffset} is past the end of the file (${file.size} bytes)`, disk);
  }
  let header: DynamicHeader;
  try {
    header = decodeDynamicHeader(await file.read(footer.dataOffset, DYNAMIC_HEADER_BYTES), `${where} dynamic disk header at byte ${footer.dataOffset}`);
  } catch (err) {
    if (!(err instanceof CorruptImageError)) throw err;
    return void sink(err.message, disk);
  }
  metadata.add(footer.dataOffset, DYNAMIC_HEADER_BYTES, "the dynamic disk header");
  const { blockSize } = header;
  if (blockSize < 512 || blockSize > 1 << 30 || (blockSize & (blockSize - 1)) !== 0) {
    return void sink(`${where} dynamic disk header: block size ${blockSize} is not a power of two from 512 bytes to 1 GiB`, disk);
  }
  const blocks = Math.ceil(footer.currentSize / blockSize);
  if (header.maxTableEntries < blocks) {
    sink(`${where} dynamic disk header: the BAT has ${header.maxTableEntries} entries, too few for ${footer.currentSize} bytes in ${blockSize}-byte blocks (${blocks})`, [
      header.maxTableEntries * blockSize,
      footer.currentSize - header.maxTableEntries * blockSize,
    ]);
  }
  if (blocks > MAX_BLOCKS) {
    throw new UnsupportedError(`${where}: ${blocks} blocks of ${blockSize} bytes (${footer.currentSize} bytes): more than any real VHD has`);
  }
  // The entries there are to walk: a check goes on with a short or cut table.
  let entries = Math.min(blocks, header.maxTableEntries);
  if (header.tableOffset + entries * 4 > file.size) {
    const inFile = Math.max(0, Math.min(entries, Math.floor((file.size - header.tableOffset) / 4)));
    sink(`${where} BAT at byte ${header.tableOffset} (${blocks * 4} bytes) runs past the end of the file (${file.size} bytes)`, [inFile * blockSize, footer.currentSize - inFile * blockSize]);
    entries = inFile;
  }
  const batBytes = Math.ceil((header.maxTableEntries * 4) / 512) * 512;
  const batApart = metadata.apartProblem(header.tableOffset, Math.max(0, Math.min(batBytes, file.size - header.tableOffset)), "the BAT", where);
  if (batApart) sink(batApart, disk);
  metadata.add(header.tableOffset, batBytes, "the BAT");
  const locatorPaths = await readLocators(file, header, metadata, where, sink);
  const bat = new PagedTable(file, header.tableOffset, entries, 4);
  await walkBat(file, bat, { blockSize, size: footer.currentSize }, metadata, where, sink);
  return { header, bat, locatorPaths };
}

/** One bit per 512-byte sector of a block, padded to whole sectors. */
export function sectorBitmapBytes(blockSize: number): number {
  return Math.ceil(blockSize / 512 / 8 / 512) * 512;
}

/**
 * Every allocated block (its sector bitmap, then its data) inside the
 * file, clear of the metadata, apart from every other block; each problem
 * sent to `sink` with the guest bytes of the blocks it concerns.
 */
async function walkBat(file: BlockSource, bat: PagedTable, disk: { blockSize: number; size: number }, metadata: MetadataRegions, where: string, sink: ProblemSink): Promise<void> {
  const span = disk.blockSize + sectorBitmapBytes(disk.blockSize);
  const describe = (index: number) => `${where} BAT entry ${index}`;
  const guestOf = (index: number): [number, number] => [index * disk.blockSize, Math.max(0, Math.min(disk.blockSize, disk.size - index * disk.blockSize))];
  const overlaps = new OverlapCheck(span, file.size, describe);
  for await (const { page, first, count } of bat.scan()) {
    for (let i = 0; i < count; i++) {
      const sector = page.readUInt32BE(i * 4);
      if (sector === UNALLOCATED) continue;
      const problem = blockPlaceProblem(sector * 512, span, file.size, metadata, describe(first + i));
      if (problem) sink(problem, guestOf(first + i));
      else overlaps.add(sector * 512, first + i);
    }
  }
  const crowded = overlaps.eachOverlap(({ first, second, message }) => sink(message, guestOf(second), guestOf(first)));
  if (crowded) sink(crowded);
}

/** The locators' data (checked to lie in the file, apart from the rest), by platform. */
async function readLocators(file: BlockSource, header: DynamicHeader, metadata: MetadataRegions, where: string, sink: ProblemSink): Promise<Array<{ platformCode: string; path: string }>> {
  const paths: Array<{ platformCode: string; path: string }> = [];
  for (const locator of header.parentLocators) {
    if (locator.dataLength === 0) continue;
    const what = `the ${locator.platformCode.trim()} parent locator data`;
    if (locator.dataLength > 64 * 1024 || locator.dataOffset + locator.dataLength > file.size) {
      sink(`${where}: ${what} at byte ${locator.dataOffset} (${locator.dataLength} bytes) is not inside the file (${file.size} bytes)`);
      continue;
    }
    const apart = metadata.apartProblem(locator.dataOffset, locator.dataLength, what, where);
    if (apart) sink(apart);
    metadata.add(locator.dataOffset, Math.ceil(locator.dataLength / 512) * 512, what);
    const path = locatorPath(locator, await file.read(locator.dataOffset, locator.dataLength));
    if (path) paths.push({ platformCode: locator.platformCode, path });
  }
  return paths;
}

/**
 * The parent, found by the first locator that names an existing file
 * (relative to the child's folder). Its unique id should be the one the
 * child recorded; a different one means the parent changed since, and its
 * bytes under the child may not be what the child was made from.
 */
async function openParent(
  file: BlockSource,
  header: DynamicHeader,
  paths: Array<{ platformCode: string; path: string }>,
  context: ContainerContext,
): Promise<{ parent: BlockSource; name: string }> {
  const candidates = parentCandidates(paths, header.parentName);
  if (candidates.length === 0) throw new CorruptImageError(`${file.name}: differencing VHD names no parent (no locator and no parent name)`);
  const raw = await openFirstRelated(context, candidates, { raw: true });
  if (!raw) throw new DeviceError(`${file.name}: cannot find the parent VHD (tried ${candidates.map((c) => `'${c}'`).join(", ")} next to it)`, "ENOENT");
  try {
    const { footer } = await readVhdFooter(raw.source);
    if (!footer.uniqueId.equals(header.parentUniqueId)) {
      context.onWarning?.(
        `${file.name}: its parent ${raw.name} has unique id ${formatUniqueId(footer.uniqueId)}, not ${formatUniqueId(header.parentUniqueId)} as recorded: the parent changed since the differencing disk was made`,
      );
    }
  } finally {
    await raw.source.close();
  }
  return { parent: await context.openRelated(raw.name), name: raw.name };
}

function describeFooter(found: FoundFooter, file: BlockSource): Record<string, unknown> {
  const { footer } = found;
  return {
    format: "vhd",
    virtualSize: footer.currentSize,
    fileSize: file.size,
    creatorApp: footer.creatorApp,
    creatorHostOs: footer.creatorHostOs,
    geometry: footer.geometry,
    // What `qemu-img info` reports for images whose creator it sizes by geometry ("vpc ", "qemu").
    chsSize: chsSectors(footer.geometry) * 512,
    uniqueId: formatUniqueId(footer.uniqueId),
    savedState: footer.savedState,
    footerAt: found.at,
  };
}

/** A VHD layer: dynamic and differencing through their BAT, fixed as the bytes before its footer. */
export async function openVhd(source: BlockSource, context: ContainerContext): Promise<ContainerSource> {
  const found = await readVhdFooter(source, context.onWarning);
  if (found.footer.diskType !== "fixed") return DynamicVhdSource.open(source, found, context);
  if (found.footer.currentSize + FOOTER_BYTES > source.size) {
    throw new CorruptImageError(
      `${source.name}: fixed VHD of ${found.footer.currentSize} bytes, but the file holds only ${source.size - FOOTER_BYTES} before its footer; the image is truncated`,
    );
  }
  return new FixedVhdSource(source, found);
}
