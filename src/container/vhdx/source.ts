/**
 * A VHDX as the disk it holds. Opening it: the current header (of two),
 * the log replayed in memory when the header says it must be, the region
 * table (of two), the metadata (block size, sizes, sector sizes, parent),
 * then one pass over the BAT checking every block's place. Reading it: a
 * payload block is fully present (in the file), partially present (its
 * sector bitmap says, sector by sector, here or in the parent), or absent
 * (zeros; in a differencing disk, the parent's bytes unless it is a zero
 * block).
 */
import { CorruptImageError, DeviceError, UnsupportedError } from "../../errors.js";
import type { BlockSource } from "../../io/block-source.js";
import { decodeGuid, ZERO_GUID } from "../../partition/guid.js";
import { LruCache } from "../../util/lru.js";
import type { ContainerContext, ContainerSource } from "../format.js";
import { blockExtents, type BlockState } from "../vdisk/block-walk.js";
import { type DiskExtent, MappedDisk } from "../vdisk/mapped-disk.js";
import { PagedTable } from "../vdisk/paged-table.js";
import { lastPathComponent, openFirstRelated } from "../vdisk/related.js";
import { blockPlaceProblem, MetadataRegions, openerSink, OverlapCheck, type ProblemSink } from "../vdisk/table-checks.js";
import { BatLayout, BitmapState, decodeBatEntry, MiB, PayloadState } from "./bat.js";
import { decodeCreator } from "./file-identifier.js";
import { METADATA_ITEM, REGION } from "./guids.js";
import { decodeVhdxHeader, HEADER_BYTES, HEADER_OFFSETS, hasLog, headerProblem, type VhdxHeader } from "./header.js";
import { planReplay } from "./log.js";
import { decodeFileParameters, decodeMetadataTable, decodeParentLocator, type FileParameters, METADATA_TABLE_BYTES, type MetadataEntry, type ParentLocator } from "./metadata.js";
import { decodeRegionTable, REGION_TABLE_BYTES, REGION_TABLE_OFFSETS, regionTableProblem, type RegionEntry } from "./region-table.js";
import { ReplayedFile } from "./replayed-file.js";

const HEADER_SECTION = MiB;
const MAX_VIRTUAL_SIZE = 64 * 1024 ** 4;
/** 16M BAT entries (128 MiB of table): 64 TiB in 4 MiB blocks. */
const MAX_BAT_ENTRIES = 1 << 24;
const BITMAPS_KEPT = 64;
const KNOWN_ITEMS = new Set<string>(Object.values(METADATA_ITEM));
/** Payload states of a block with nothing in the file. */
const ABSENT_STATES = new Set<number>([PayloadState.notPresent, PayloadState.undefined, PayloadState.zero, PayloadState.unmapped, PayloadState.unmappedV095]);

export interface Metadata {
  params: FileParameters;
  virtualSize: number;
  logicalSectorSize: number;
  physicalSectorSize: number;
  diskId: string;
  parentLocator?: ParentLocator;
}

/** What the replayed log changed, for describe(). */
interface LogReplay {
  entries: number;
  changedSectors: number;
}

export class VhdxSource extends MappedDisk implements ContainerSource {
  readonly format = "vhdx";
  readonly seekable = true;
  private readonly bitmaps = new LruCache<number, Promise<Buffer>>(BITMAPS_KEPT);

  private constructor(
    private readonly file: BlockSource,
    /** The file as read: with its log replayed, when it had one to replay. */
    private readonly view: BlockSource,
    private readonly header: VhdxHeader,
    private readonly creator: string,
    private readonly metadata: Metadata,
    private readonly layout: BatLayout,
    private readonly bat: PagedTable,
    private readonly replay: LogReplay | undefined,
    parent: BlockSource | undefined,
    private readonly parentFile: string | undefined,
  ) {
    super(file.name, metadata.virtualSize, metadata.logicalSectorSize, parent);
  }

  static async open(file: BlockSource, context: ContainerContext): Promise<VhdxSource> {
    const where = `${file.name}: VHDX`;
    if (file.size < HEADER_SECTION) throw new CorruptImageError(`${where}: ${file.size} bytes, less than the 1 MiB header section`);
    const creator = decodeCreator(await file.read(0, 520));
    const header = await currentHeader(file, where, context.onWarning);
    let view: BlockSource = file;
    let replay: LogReplay | undefined;
    if (hasLog(header)) {
      if (header.logVersion !== 0) throw new UnsupportedError(`${where}: log version ${header.logVersion} (platter replays version 0)`);
      const plan = await planReplay(file, header.logOffset, header.logLength, header.logGuid, `${where} log`);
      if (plan) {
        const replayed = new ReplayedFile(file, plan.writes, plan.lastFileOffset);
        view = replayed;
        replay = { entries: plan.entries, changedSectors: replayed.changedSectors };
        context.onWarning?.(
          `${file.name}: the VHDX log holds ${plan.entries} change(s) its writer did not finish applying; read with them replayed in memory (the file is left as it is; \`qemu-img check -r all\` applies them)`,
        );
      } else {
        context.onWarning?.(`${file.name}: the VHDX header asks for a log replay, but the log holds no valid entry; reading the file as it is`);
      }
    }
    const sink = openerSink(context.lenient);
    const tables = await readVhdxTables(view, header, where, sink, context.onWarning);
    if (!tables) throw sink.fatal();
    const { metadata, layout, bat } = tables;
    let parent: BlockSource | undefined;
    let parentFile: string | undefined;
    if (metadata.params.hasParent && !context.noBacking) {
      ({ parent, name: parentFile } = await openParent(metadata.parentLocator as ParentLocator, context, where));
    }
    return new VhdxSource(file, view, header, creator, metadata, layout, bat, replay, parent, parentFile);
  }

  describe(): Record<string, unknown> {
    const { metadata, header } = this;
    const subformat = metadata.params.hasParent ? "differencing" : metadata.params.leaveBlocksAllocated ? "fixed" : "dynamic";
    return {
      format: "vhdx",
      subformat,
      virtualSize: metadata.virtualSize,
      fileSize: this.file.size,
      clusterSize: metadata.params.blockSize,
      logicalSectorSize: metadata.logicalSectorSize,
      physicalSectorSize: metadata.physicalSectorSize,
      diskId: metadata.diskId,
      creator: this.creator,
      // A log still to apply: what `qemu-img info` refuses to open read-only.
      logReplayNeeded: hasLog(header),
      ...(this.replay ? { logReplayed: this.replay } : {}),
      ...(metadata.parentLocator
        ? {
            parentLocator: Object.fromEntries(metadata.parentLocator.entries),
            parentFile: this.parentFile ?? null,
            // What info follows for the backing chain: the parent found, else (opened alone) the name it would be looked for first.
            backingFile: this.parentFile ?? parentCandidates(metadata.parentLocator)[0] ?? null,
          }
        : {}),
    };
  }

  protected extents(offset: number, length: number): AsyncIterable<DiskExtent> {
    return blockExtents(offset, length, this.metadata.params.blockSize, (block) => {
      const entry = this.bat.entry(this.layout.payloadEntry(block), decodeBatEntry);
      return entry instanceof Promise ? entry.then((e) => this.stateOf(block, e.state, e.offset)) : this.stateOf(block, entry.state, entry.offset);
    });
  }

  private stateOf(block: number, state: number, offset: number): BlockState | Promise<BlockState> {
    switch (state) {
      case PayloadState.fullyPresent:
        return { kind: "data", file: this.view, host: offset };
      case PayloadState.partiallyPresent:
        // Only opened leniently (platter check) can a disk with no parent have one.
        if (!this.metadata.params.hasParent) throw new CorruptImageError(`${this.name}: VHDX payload block ${block} is partially present, but the disk has no parent`);
        return this.sectorBitmap(block).then((bitmap) => ({
          kind: "sectors",
          file: this.view,
          host: offset,
          bitmap,
          firstBit: 0,
          sectorSize: this.metadata.logicalSectorSize,
          msbFirst: false,
        }));
      case PayloadState.zero:
        return { kind: "zero" };
      default:
        // Not present, undefined, unmapped: nothing here, so the parent's bytes (zeros without one).
        return { kind: this.metadata.params.hasParent ? "parent" : "zero" };
    }
  }

  /** The bits of payload block `block` in its chunk's sector bitmap block. */
  private sectorBitmap(block: number): Promise<Buffer> {
    const { layout } = this;
    const chunk = Math.floor(block / layout.chunkRatio);
    let pending = this.bitmaps.get(block);
    if (!pending) {
      pending = Promise.resolve(this.bat.entry(layout.bitmapEntry(chunk), decodeBatEntry)).then((entry) => {
        if (entry.state !== BitmapState.present) {
          throw new CorruptImageError(`${this.name}: VHDX payload block ${block} is partially present, but the sector bitmap of its chunk is not (BAT entry ${layout.bitmapEntry(chunk)})`);
        }
        const bytes = layout.bitmapBytesPerBlock;
        return this.view.read(entry.offset + (block % layout.chunkRatio) * bytes, bytes);
      });
      pending.catch(() => this.bitmaps.delete(block));
      this.bitmaps.set(block, pending);
    }
    return pending;
  }
}

/** What a VHDX's region table, metadata and BAT say, once walked. */
export interface VhdxTables {
  metadata: Metadata;
  layout: BatLayout;
  bat: PagedTable;
}

/**
 * Read and walk the structure after the header: the region table, where
 * the log, BAT and metadata regions lie (MiB-aligned, in the file, apart),
 * the metadata items, and every BAT entry. Each problem goes to `sink` (the
 * opener's throws the first); undefined when one leaves nothing further to walk.
 */
export async function readVhdxTables(view: BlockSource, header: VhdxHeader, where: string, sink: ProblemSink, onWarning?: (message: string) => void): Promise<VhdxTables | undefined> {
  let regions: { bat: RegionEntry; metadata: RegionEntry };
  let metadata: Metadata;
  const metadataRegions = new MetadataRegions().add(0, HEADER_SECTION, "the header section");
  if (header.logLength > 0) {
    const apart = metadataRegions.apartProblem(header.logOffset, header.logLength, "the log", where);
    if (apart) sink(apart);
    metadataRegions.add(header.logOffset, header.logLength, "the log");
  }
  try {
    regions = await readRegions(view, where, onWarning);
    for (const [what, region] of [["the BAT", regions.bat], ["the metadata region", regions.metadata]] as const) {
      if (region.fileOffset % MiB !== 0 || region.fileOffset + region.length > view.size) {
        return void sink(`${where}: ${what} at byte ${region.fileOffset} (${region.length} bytes) is not a MiB-aligned part of the file (${view.size} bytes)`);
      }
      const apart = metadataRegions.apartProblem(region.fileOffset, region.length, what, where);
      if (apart) sink(apart);
      metadataRegions.add(region.fileOffset, region.length, what);
    }
    metadata = await readMetadata(view, regions.metadata, where);
  } catch (err) {
    if (!(err instanceof CorruptImageError)) throw err;
    return void sink(err.message);
  }
  const layout = new BatLayout(metadata.virtualSize, metadata.params.blockSize, metadata.logicalSectorSize, metadata.params.hasParent);
  if (layout.entries > MAX_BAT_ENTRIES) throw new UnsupportedError(`${where}: a BAT of ${layout.entries} entries: more than any real VHDX has`);
  if (layout.entries * 8 > regions.bat.length) {
    return void sink(`${where}: the BAT region holds ${regions.bat.length / 8} entries, the disk needs ${layout.entries}`, [0, metadata.virtualSize]);
  }
  const bat = new PagedTable(view, regions.bat.fileOffset, layout.entries, 8);
  await walkBat(view, bat, layout, metadataRegions, where, sink);
  return { metadata, layout, bat };
}

/** The valid header with the higher sequence number; a damaged one is reported. */
export async function currentHeader(file: BlockSource, where: string, onWarning?: (message: string) => void): Promise<VhdxHeader> {
  const found: Array<{ header: VhdxHeader; at: number; bytes: Buffer }> = [];
  const problems: string[] = [];
  for (const at of HEADER_OFFSETS) {
    const bytes = await file.read(at, HEADER_BYTES);
    const problem = headerProblem(bytes);
    if (problem) problems.push(`header at byte ${at}: ${problem}`);
    else found.push({ header: decodeVhdxHeader(bytes), at, bytes });
  }
  if (found.length === 0) throw new CorruptImageError(`${where}: no valid header (${problems.join("; ")})`);
  if (problems.length > 0) onWarning?.(`${file.name}: VHDX ${problems[0]}; using the other one`);
  found.sort((a, b) => (a.header.sequenceNumber < b.header.sequenceNumber ? 1 : a.header.sequenceNumber > b.header.sequenceNumber ? -1 : 0));
  return found[0].header;
}

/** The BAT and metadata regions from the first valid region table. */
async function readRegions(view: BlockSource, where: string, onWarning?: (message: string) => void): Promise<{ bat: RegionEntry; metadata: RegionEntry }> {
  const problems: string[] = [];
  for (const at of REGION_TABLE_OFFSETS) {
    const bytes = await view.read(at, REGION_TABLE_BYTES);
    const problem = regionTableProblem(bytes);
    if (problem) {
      problems.push(`region table at byte ${at}: ${problem}`);
      continue;
    }
    if (problems.length > 0) onWarning?.(`${view.name}: VHDX ${problems[0]}; using the copy at byte ${at}`);
    const entries = decodeRegionTable(bytes);
    const unknown = entries.find((e) => e.required && e.guid !== REGION.bat && e.guid !== REGION.metadata);
    if (unknown) throw new UnsupportedError(`${where}: a required region ${unknown.guid} platter does not know`);
    const bat = entries.filter((e) => e.guid === REGION.bat);
    const metadata = entries.filter((e) => e.guid === REGION.metadata);
    if (bat.length !== 1 || metadata.length !== 1) {
      throw new CorruptImageError(`${where}: the region table at byte ${at} lists ${bat.length} BAT and ${metadata.length} metadata regions (one of each is required)`);
    }
    return { bat: bat[0], metadata: metadata[0] };
  }
  throw new CorruptImageError(`${where}: no valid region table (${problems.join("; ")})`);
}

async function readMetadata(view: BlockSource, region: RegionEntry, where: string): Promise<Metadata> {
  if (region.length < METADATA_TABLE_BYTES) throw new CorruptImageError(`${where}: a metadata region of ${region.length} bytes`);
  const entries = decodeMetadataTable(await view.read(region.fileOffset, METADATA_TABLE_BYTES), region.length, `${where} metadata at byte ${region.fileOffset}`);
  const unknown = entries.find((e) => e.isRequired && !KNOWN_ITEMS.has(e.itemId));
  if (unknown) throw new UnsupportedError(`${where}: a required metadata item ${unknown.itemId} platter does not know`);
  const item = async (id: string, what: string, minLength: number, required = true): Promise<Buffer | undefined> => {
    const entry: MetadataEntry | undefined = entries.find((e) => e.itemId === id);
    if (!entry || entry.length === 0) {
      if (required) throw new CorruptImageError(`${where}: the metadata has no ${what}`);
      return undefined;
    }
    if (entry.length < minLength) throw new CorruptImageError(`${where}: the ${what} metadata item is ${entry.length} bytes`);
    return view.read(region.fileOffset + entry.offset, entry.length);
  };
  const params = decodeFileParameters((await item(METADATA_ITEM.fileParameters, "file parameters", 8)) as Buffer);
  const virtualSize = Number(((await item(METADATA_ITEM.virtualDiskSize, "virtual disk size", 8)) as Buffer).readBigUInt64LE(0));
  const logicalSectorSize = ((await item(METADATA_ITEM.logicalSectorSize, "logical sector size", 4)) as Buffer).readUInt32LE(0);
  const physicalSectorSize = ((await item(METADATA_ITEM.physicalSectorSize, "physical sector size", 4)) as Buffer).readUInt32LE(0);
  const page83 = await item(METADATA_ITEM.page83Data, "page 83 data", 16, false);
  const { blockSize } = params;
  if (blockSize < MiB || blockSize > 256 * MiB || (blockSize & (blockSize - 1)) !== 0) {
    throw new CorruptImageError(`${where}: block size ${blockSize} is not a power of two from 1 MiB to 256 MiB`);
  }
  if (logicalSectorSize !== 512 && logicalSectorSize !== 4096) throw new CorruptImageError(`${where}: logical sector size ${logicalSectorSize} (512 or 4096)`);
  if (physicalSectorSize !== 512 && physicalSectorSize !== 4096) throw new CorruptImageError(`${where}: physical sector size ${physicalSectorSize} (512 or 4096)`);
  if (virtualSize === 0 || virtualSize > MAX_VIRTUAL_SIZE || virtualSize % logicalSectorSize !== 0) {
    throw new CorruptImageError(`${where}: virtual disk size ${virtualSize} is not whole ${logicalSectorSize}-byte sectors up to 64 TiB`);
  }
  let parentLocator: ParentLocator | undefined;
  if (params.hasParent) {
    const locator = await item(METADATA_ITEM.parentLocator, "parent locator (the disk is differencing)", 20);
    parentLocator = decodeParentLocator(locator as Buffer, `${where} parent locator`);
  }
  return { params, virtualSize, logicalSectorSize, physicalSectorSize, diskId: page83 ? decodeGuid(page83, 0) : ZERO_GUID, parentLocator };
}

/**
 * Every present block inside the file, clear of the metadata and of every
 * other block (sector bitmap blocks included); states valid for the disk's
 * type. Each problem goes to `sink` with the guest bytes it puts in doubt.
 */
async function walkBat(view: BlockSource, bat: PagedTable, layout: BatLayout, metadata: MetadataRegions, where: string, sink: ProblemSink): Promise<void> {
  const describe = (index: number) => `${where} BAT entry ${index}`;
  const guestOf = (index: number): [number, number] => {
    // A sector bitmap's problem puts its whole chunk in doubt.
    const [first, blocks] = layout.isBitmapEntry(index) ? [Math.floor(index / (layout.chunkRatio + 1)) * layout.chunkRatio, layout.chunkRatio] : [layout.blockOfEntry(index), 1];
    const start = first * layout.blockSize;
    return [start, Math.max(0, Math.min(blocks * layout.blockSize, layout.virtualSize - start))];
  };
  // Payload blocks and sector bitmap blocks, all apart from each other.
  const blocks = new OverlapCheck(layout.blockSize, view.size, describe);
  /** Partially present blocks of the chunk walked: its sector bitmap (the entry after them) must be present. */
  let partial: number[] = [];
  for await (const { page, first, count } of bat.scan()) {
    for (let i = 0; i < count; i++) {
      const index = first + i;
      const { state, offset } = decodeBatEntry(page, i * 8);
      if (layout.isBitmapEntry(index)) {
        const needed = partial;
        partial = [];
        if (state === BitmapState.notPresent) {
          for (const p of needed) sink(`${describe(p)} is partially present, but the sector bitmap of its chunk (BAT entry ${index}) is not`, guestOf(p));
          continue;
        }
        if (state !== BitmapState.present) {
          sink(`${describe(index)} (a sector bitmap) has unknown state ${state}`, guestOf(index));
          continue;
        }
        const problem = blockPlaceProblem(offset, MiB, view.size, metadata, `${describe(index)} (sector bitmap)`);
        if (problem) sink(problem, guestOf(index));
        else blocks.add(offset, index, MiB);
        continue;
      }
      const block = layout.blockOfEntry(index);
      const what = `${describe(index)} (guest offset ${block * layout.blockSize})`;
      if (state === PayloadState.fullyPresent || state === PayloadState.partiallyPresent) {
        if (state === PayloadState.partiallyPresent && !layout.hasParent) {
          sink(`${what} is partially present, which only a differencing disk can be`, guestOf(index));
          continue;
        }
        const length = Math.min(layout.blockSize, layout.virtualSize - block * layout.blockSize);
        const problem = blockPlaceProblem(offset, length, view.size, metadata, what);
        if (problem) sink(problem, guestOf(index));
        else blocks.add(offset, index, length);
        if (state === PayloadState.partiallyPresent) partial.push(index);
      } else if (!ABSENT_STATES.has(state)) {
        sink(`${what} has unknown state ${state}`, guestOf(index));
      }
    }
  }
  const crowded = blocks.eachOverlap(({ first, second, message }) => sink(message, guestOf(second), guestOf(first)));
  if (crowded) sink(crowded);
}

/** Names to look for the parent by, best first: its relative path, then the file name its paths end with. */
function parentCandidates(locator: ParentLocator): string[] {
  const relative = locator.entries.get("relative_path");
  const absolute = [locator.entries.get("absolute_win32_path"), locator.entries.get("volume_path")];
  const names = [relative?.replace(/\\/g, "/").replace(/^(\.\/)+/, ""), ...[relative, ...absolute].map((p) => (p ? lastPathComponent(p) : undefined))];
  return [...new Set(names.filter((n): n is string => !!n))];
}

/**
 * The parent a differencing VHDX names: its relative path first, then the
 * file name its absolute paths end with, each relative to the child's
 * folder. Its data write GUID should be the child's parent_linkage.
 */
async function openParent(locator: ParentLocator, context: ContainerContext, where: string): Promise<{ parent: BlockSource; name: string }> {
  const candidates = parentCandidates(locator);
  if (candidates.length === 0) throw new CorruptImageError(`${where}: the parent locator names no path`);
  const raw = await openFirstRelated(context, candidates, { raw: true });
  if (!raw) throw new DeviceError(`${where}: cannot find the parent VHDX (tried ${candidates.map((c) => `'${c}'`).join(", ")} next to it)`, "ENOENT");
  try {
    const linkage = locator.entries.get("parent_linkage")?.replace(/[{}]/g, "").toUpperCase();
    const parentHeader = await currentHeader(raw.source, `${raw.name}: VHDX`);
    if (linkage && parentHeader.dataWriteGuid !== linkage && locator.entries.get("parent_linkage2")?.replace(/[{}]/g, "").toUpperCase() !== parentHeader.dataWriteGuid) {
      context.onWarning?.(`${where}: its parent ${raw.name} has data write GUID ${parentHeader.dataWriteGuid}, not ${linkage} as recorded: the parent changed since`);
    }
  } finally {
    await raw.source.close();
  }
  return { parent: await context.openRelated(raw.name), name: raw.name };
}
