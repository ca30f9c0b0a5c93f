/**
 * One hosted sparse extent (monolithicSparse, streamOptimized, a
 * twoGbMaxExtentSparse piece): a grain directory (GD) of grain tables (GT),
 * each GT entry the sector of a grain, 0 for "not here" (zeros, or the
 * parent's bytes) and, with the zeroed-grain flag, 1 for "zeros". In a
 * streamOptimized extent grains are compressed, each behind a marker; the
 * GD is where the header says, or — GD_AT_END, as VMware streams them —
 * where the footer at the end of the file says.
 *
 * Checked once at open: the header, the footer, the GD and where every GT
 * is (inside the file, clear of the header, descriptor, directories and of
 * each other). Each GT is checked when first read, each compressed grain
 * when decoded (its marker's LBA, its size, what it expands to).
 */
import { CorruptImageError, UnsupportedError } from "../../errors.js";
import type { BlockSource } from "../../io/block-source.js";
import { LruCache } from "../../util/lru.js";
import { decompressBlock } from "../codec/zlib-block.js";
import type { BlockState } from "../vdisk/block-walk.js";
import { PagedTable } from "../vdisk/paged-table.js";
import { blockPlaceProblem, MetadataRegions, OverlapCheck, type ProblemSink } from "../vdisk/table-checks.js";
import { decodeGrainMarker, decodeMetadataMarker, GRAIN_MARKER_BYTES, MarkerType } from "./marker.js";
import { COMPRESSION_DEFLATE, decodeSparseHeader, Flags, SECTOR, type SparseHeader } from "./sparse-header.js";

const ZEROED_GRAIN = 1;
/** qemu's limit on grain table length. */
const MAX_GTES_PER_GT = 512;
/** Grains up to 64 MiB (qemu allows 1 GiB; no tool makes more than 1 MiB). */
const MAX_GRAIN_SECTORS = 1 << 17;
/** A compressed grain is decoded whole: at most 16 MiB of it. */
const MAX_COMPRESSED_GRAIN_BYTES = 16 << 20;
/** Grain directory entries: 2^24 tables cover 256 TiB in VMware's 64 KiB grains. */
const MAX_GD_ENTRIES = 1 << 24;
const TABLES_KEPT = 512;
const GRAIN_CACHE_BYTES = 8 << 20;

export class SparseExtent {
  readonly grainBytes: number;
  readonly compressed: boolean;
  private readonly gd: PagedTable;
  private readonly tables = new LruCache<number, Promise<Buffer>>(TABLES_KEPT);
  private readonly grains: LruCache<number, Promise<Buffer>>;

  private constructor(
    readonly file: BlockSource,
    readonly header: SparseHeader,
    /** Byte offset of the grain directory used (the footer's for a stream with GD_AT_END). */
    readonly gdAt: number,
    private readonly gdEntries: number,
    private readonly metadata: MetadataRegions,
    /** Byte offsets of every grain table, sorted: no grain may point into one. */
    private readonly tableStarts: Float64Array,
    private readonly where: string,
    /** Opened for `platter check`: tables are not checked as they are read. */
    private readonly lenient: boolean,
  ) {
    this.grainBytes = header.grainSize * SECTOR;
    this.compressed = header.compressAlgorithm === COMPRESSION_DEFLATE;
    this.gd = new PagedTable(file, gdAt, gdEntries, 4);
    this.grains = new LruCache(Math.max(4, Math.floor(GRAIN_CACHE_BYTES / this.grainBytes)));
  }

  /** Bytes of disk the extent holds. */
  get capacityBytes(): number {
    return this.header.capacity * SECTOR;
  }

  private get tableBytes(): number {
    return this.header.gtesPerGt * 4;
  }

  static async open(file: BlockSource, where: string, lenient = false): Promise<SparseExtent> {
    if (file.size < SECTOR) throw new CorruptImageError(`${where}: too small for a sparse extent (${file.size} bytes)`);
    let header = decodeSparseHeader(await file.read(0, SECTOR), `${where} header`);
    const metadata = new MetadataRegions().add(0, SECTOR, "the header");
    if (header.gdOffset === "end") {
      header = await readFooter(file, where);
      metadata.add(file.size - 3 * SECTOR, 3 * SECTOR, "the footer");
    }
    checkHeader(header, where);
    const gdAt = (header.gdOffset as number) * SECTOR;
    const span = header.gtesPerGt * header.grainSize;
    const gdEntries = Math.ceil(header.capacity / span);
    if (gdEntries > MAX_GD_ENTRIES) throw new UnsupportedError(`${where}: a grain directory of ${gdEntries} entries: more than any real VMDK has`);
    const gdBytes = Math.ceil((gdEntries * 4) / SECTOR) * SECTOR;
    const region = (start: number, length: number, what: string) => {
      if (length === 0) return;
      if (start + length > file.size) throw new CorruptImageError(`${where}: ${what} at byte ${start} (${length} bytes) runs past the end of the file (${file.size} bytes)`);
      metadata.checkApart(start, length, what, where);
      metadata.add(start, length, what);
    };
    region(header.descriptorOffset * SECTOR, header.descriptorSize * SECTOR, "the embedded descriptor");
    region(gdAt, Math.min(gdBytes, file.size - gdAt), "the grain directory");
    if (header.flags & Flags.redundantGrainTable && header.rgdOffset !== 0) {
      region(header.rgdOffset * SECTOR, Math.min(gdBytes, Math.max(0, file.size - header.rgdOffset * SECTOR)), "the redundant grain directory");
    }
    if (gdAt + gdEntries * 4 > file.size) throw new CorruptImageError(`${where}: the grain directory at byte ${gdAt} runs past the end of the file`);
    const tableStarts = await checkGrainDirectory(file, new PagedTable(file, gdAt, gdEntries, 4), header.gtesPerGt * 4, metadata, where);
    return new SparseExtent(file, header, gdAt, gdEntries, metadata, tableStarts, where, lenient);
  }

  /** Grain `grain` of the extent (grain-size units). */
  lookup(grain: number): BlockState | Promise<BlockState> {
    const { gtesPerGt } = this.header;
    const gdIndex = Math.floor(grain / gtesPerGt);
    if (gdIndex >= this.gdEntries) return { kind: "parent", blocks: Number.MAX_SAFE_INTEGER };
    const tableSector = this.gd.entry(gdIndex, (page, at) => page.readUInt32LE(at));
    const withTable = (sector: number): BlockState | Promise<BlockState> => {
      if (sector === 0) return { kind: "parent", blocks: gtesPerGt - (grain % gtesPerGt) };
      return this.table(sector * SECTOR, gdIndex).then((table) => this.grainState(table.readUInt32LE((grain % gtesPerGt) * 4), grain));
    };
    return tableSector instanceof Promise ? tableSector.then(withTable) : withTable(tableSector);
  }

  describe(): Record<string, unknown> {
    return {
      version: this.header.version,
      clusterSize: this.grainBytes,
      compressed: this.compressed,
      ...(this.header.flags & Flags.zeroedGrain ? { zeroedGrain: true } : {}),
      ...(this.header.uncleanShutdown ? { uncleanShutdown: true } : {}),
      ...(this.header.gdOffset === "end" ? { grainDirectory: "footer" } : {}),
    };
  }

  private grainState(entry: number, grain: number): BlockState {
    if (entry === 0) return { kind: "parent" };
    if (entry === ZEROED_GRAIN && this.header.flags & Flags.zeroedGrain) return { kind: "zero" };
    const host = entry * SECTOR;
    if (!this.compressed) return { kind: "data", file: this.file, host };
    return { kind: "decoded", bytes: () => this.decodedGrain(host, grain) };
  }

  /** The grain table at `at`, its entries checked once when read. */
  private table(at: number, gdIndex: number): Promise<Buffer> {
    let pending = this.tables.get(at);
    if (!pending) {
      pending = this.file.read(at, this.tableBytes).then((table) => {
        this.checkTable(table, gdIndex);
        return table;
      });
      pending.catch(() => this.tables.delete(at));
      this.tables.set(at, pending);
    }
    return pending;
  }

  private checkTable(table: Buffer, gdIndex: number): void {
    // Opened leniently (platter check, which walks every table itself), a bad entry fails only the read that reaches it.
    if (this.lenient) return;
    this.walkTable(table, gdIndex, (message) => {
      throw new CorruptImageError(message);
    });
  }

  /**
   * Each entry of grain table `gdIndex` inside the file, clear of the
   * metadata and the grain tables; `place` hears of each grain in the file
   * that passed (its grain number and byte offset).
   */
  private walkTable(table: Buffer, gdIndex: number, sink: ProblemSink, place?: (grain: number, start: number) => void): void {
    const { gtesPerGt } = this.header;
    for (let i = 0; i < gtesPerGt; i++) {
      const entry = table.readUInt32LE(i * 4);
      if (entry === 0 || (entry === ZEROED_GRAIN && this.header.flags & Flags.zeroedGrain)) continue;
      const grain = gdIndex * gtesPerGt + i;
      const start = entry * SECTOR;
      // The file needs the bytes a read takes: the marker of a compressed grain, else the grain's part of the disk.
      const length = this.compressed ? GRAIN_MARKER_BYTES : this.grainLength(grain);
      if (length <= 0) continue;
      const where = `${this.where}: grain table entry for grain ${grain} (extent offset ${grain * this.grainBytes})`;
      const inTable = this.insideTable(start, length) ? `${where} points at byte ${start}, inside a grain table` : undefined;
      const problem = blockPlaceProblem(start, length, this.file.size, this.metadata, where) ?? inTable;
      if (problem) sink(problem, this.guestOf(grain));
      else place?.(grain, start);
    }
  }

  /** Bytes of disk grain `grain` holds: a grain, less past the capacity. */
  private grainLength(grain: number): number {
    return Math.min(this.grainBytes, this.capacityBytes - grain * this.grainBytes);
  }

  private guestOf(grain: number): [number, number] {
    return [grain * this.grainBytes, Math.max(0, this.grainLength(grain))];
  }

  /**
   * `platter check` of the extent (opened: its header, footer and grain
   * directory sound): every grain table walked as a read walks it, every
   * problem sent to `sink` with the extent bytes it puts in doubt; no two
   * grains sharing bytes; a compressed grain's marker naming its own
   * sector and fitting in the file; the redundant grain directory and its
   * tables the same as the primary's. `base`: where the extent starts in
   * the disk. qemu-img check finds only grains past the end of the file
   * ("cluster offset for sector N points after EOF").
   */
  async check(report: ProblemSink, base = 0): Promise<void> {
    // Guest bytes of the disk, not of the extent: it starts `base` bytes in.
    const shift = (range?: [number, number]): [number, number] | undefined => range && [range[0] + base, range[1]];
    const sink: ProblemSink = (message, guest, alsoInDoubt) => report(message, shift(guest), shift(alsoInDoubt));
    const { gtesPerGt } = this.header;
    const grains = new OverlapCheck(this.compressed ? SECTOR : this.grainBytes, this.file.size, (grain) => `${this.where} grain table entry for grain ${grain}`);
    const redundant = this.header.flags & Flags.redundantGrainTable && this.header.rgdOffset !== 0 ? new PagedTable(this.file, this.header.rgdOffset * SECTOR, this.gdEntries, 4) : undefined;
    for (let gdIndex = 0; gdIndex < this.gdEntries; gdIndex++) {
      const tableAt = (await this.gd.entry(gdIndex, (page, at) => page.readUInt32LE(at))) * SECTOR;
      const span: [number, number] = [gdIndex * gtesPerGt * this.grainBytes, Math.min(gtesPerGt * this.grainBytes, this.capacityBytes - gdIndex * gtesPerGt * this.grainBytes)];
      const table = tableAt === 0 ? undefined : await this.file.read(tableAt, this.tableBytes);
      if (redundant) await this.checkRedundant(gdIndex, table, (await redundant.entry(gdIndex, (page, at) => page.readUInt32LE(at))) * SECTOR, span, sink);
      if (!table) continue;
      const placed: Array<[number, number]> = [];
      this.walkTable(table, gdIndex, sink, (grain, start) => placed.push([grain, start]));
      for (const [grain, start] of placed) {
        if (!this.compressed) {
          grains.add(start, grain, this.grainLength(grain));
          continue;
        }
        const length = await this.checkMarker(grain, start, sink);
        if (length !== undefined) grains.add(start, grain, length);
      }
    }
    const crowded = grains.eachOverlap(({ first, second, message }) => sink(message, this.guestOf(second), this.guestOf(first)));
    if (crowded) sink(crowded);
  }

  /** A compressed grain's marker at `start`: its own first sector, its bytes inside the file. Its length in the file, if sound. */
  private async checkMarker(grain: number, start: number, sink: ProblemSink): Promise<number | undefined> {
    if (!(this.header.flags & Flags.markers)) return GRAIN_MARKER_BYTES;
    const where = `${this.where}: compressed grain at byte ${start} (extent offset ${grain * this.grainBytes})`;
    const marker = decodeGrainMarker(await this.file.read(start, GRAIN_MARKER_BYTES), where);
    const problem =
      marker.lba !== grain * this.header.grainSize
        ? `${where}: its marker says sector ${marker.lba}, not ${grain * this.header.grainSize}`
        : marker.size === 0 || marker.size > 2 * this.grainBytes
          ? `${where}: ${marker.size} compressed bytes for a ${this.grainBytes}-byte grain`
          : start + GRAIN_MARKER_BYTES + marker.size > this.file.size
            ? `${where}: its ${marker.size} bytes run past the end of the file (${this.file.size} bytes)`
            : undefined;
    if (problem) return void sink(problem, this.guestOf(grain));
    return GRAIN_MARKER_BYTES + marker.size;
  }

  /** The redundant grain directory's entry `gdIndex` names a table the same as the primary's `table`; the grains they disagree on are in doubt. */
  private async checkRedundant(gdIndex: number, table: Buffer | undefined, copyAt: number, span: [number, number], sink: ProblemSink): Promise<void> {
    const where = `${this.where}: redundant grain directory entry ${gdIndex}`;
    if (!table || copyAt === 0) {
      if (!table !== (copyAt === 0)) sink(`${where} ${copyAt === 0 ? "names no grain table, the grain directory does" : `points at byte ${copyAt}, the grain directory at no table`}`, span);
      return;
    }
    if (copyAt + this.tableBytes > this.file.size) return void sink(`${where} points at byte ${copyAt}, past the end of the file (${this.file.size} bytes)`, span);
    const copy = await this.file.read(copyAt, this.tableBytes);
    const differing: number[] = [];
    for (let i = 0; i < this.header.gtesPerGt; i++) if (copy.readUInt32LE(i * 4) !== table.readUInt32LE(i * 4)) differing.push(gdIndex * this.header.gtesPerGt + i);
    if (differing.length === 0) return;
    const [first, last] = [differing[0], differing[differing.length - 1]];
    const from = this.guestOf(first)[0];
    const to = this.guestOf(last)[0] + this.guestOf(last)[1];
    sink(`${where}: its grain table at byte ${copyAt} disagrees with the primary on ${differing.length} grain(s), from grain ${first}`, [from, to - from]);
  }

  private insideTable(start: number, length: number): boolean {
    const starts = this.tableStarts;
    let lo = 0;
    let hi = starts.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (starts[mid] < start + length) lo = mid + 1;
      else hi = mid;
    }
    // starts[lo - 1] is the last table starting before the range ends.
    return lo > 0 && starts[lo - 1] + this.tableBytes > start;
  }

  private decodedGrain(host: number, grain: number): Promise<Buffer> {
    let pending = this.grains.get(host);
    if (!pending) {
      pending = this.decode(host, grain);
      pending.catch(() => this.grains.delete(host));
      this.grains.set(host, pending);
    }
    return pending;
  }

  private async decode(host: number, grain: number): Promise<Buffer> {
    const where = `${this.where}: compressed grain at byte ${host} (extent offset ${grain * this.grainBytes})`;
    const needed = Math.min(this.grainBytes, this.capacityBytes - grain * this.grainBytes);
    let input: Buffer;
    if (this.header.flags & Flags.markers) {
      const marker = decodeGrainMarker(await this.file.read(host, GRAIN_MARKER_BYTES), where);
      if (marker.lba !== grain * this.header.grainSize) throw new CorruptImageError(`${where}: its marker says sector ${marker.lba}, not ${grain * this.header.grainSize}`);
      if (marker.size === 0 || marker.size > 2 * this.grainBytes) throw new CorruptImageError(`${where}: ${marker.size} compressed bytes for a ${this.grainBytes}-byte grain`);
      if (host + GRAIN_MARKER_BYTES + marker.size > this.file.size) throw new CorruptImageError(`${where}: its ${marker.size} bytes run past the end of the file`);
      input = await this.file.read(host + GRAIN_MARKER_BYTES, marker.size);
    } else {
      // Without markers the compressed size is unknown: the stream ends where it ends.
      input = await this.file.read(host, Math.min(2 * this.grainBytes, this.file.size - host));
    }
    let bytes: Buffer;
    try {
      bytes = await decompressBlock(input, this.grainBytes);
    } catch (err) {
      throw new CorruptImageError(`${where}: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
    }
    if (bytes.length < needed) throw new CorruptImageError(`${where}: expands to ${bytes.length} bytes, the grain holds ${needed}`);
    return bytes;
  }
}

function checkHeader(header: SparseHeader, where: string): void {
  const { version, grainSize, gtesPerGt, capacity } = header;
  if (version < 1 || version > 3) throw new UnsupportedError(`${where}: sparse extent version ${version} (platter reads 1 to 3)`);
  if (grainSize < 1 || grainSize > MAX_GRAIN_SECTORS || (grainSize & (grainSize - 1)) !== 0) {
    throw new CorruptImageError(`${where}: grain size of ${grainSize} sectors at byte 20 is not a power of two up to ${MAX_GRAIN_SECTORS}`);
  }
  if (header.compressAlgorithm === COMPRESSION_DEFLATE && grainSize * SECTOR > MAX_COMPRESSED_GRAIN_BYTES) {
    throw new CorruptImageError(`${where}: compressed grains of ${grainSize * SECTOR} bytes (at most ${MAX_COMPRESSED_GRAIN_BYTES} are decoded)`);
  }
  if (header.compressAlgorithm !== 0 && header.compressAlgorithm !== COMPRESSION_DEFLATE) {
    throw new UnsupportedError(`${where}: compression algorithm ${header.compressAlgorithm} (VMDK knows only deflate, 1)`);
  }
  if (gtesPerGt < 1 || gtesPerGt > MAX_GTES_PER_GT) throw new CorruptImageError(`${where}: ${gtesPerGt} entries per grain table at byte 44 (1 to ${MAX_GTES_PER_GT})`);
  if (capacity === 0) throw new CorruptImageError(`${where}: capacity 0 at byte 12`);
  if (header.gdOffset === "end" || header.gdOffset === 0) throw new CorruptImageError(`${where}: no grain directory offset`);
}

/** A stream's footer: a footer marker, a copy of the header with the real GD offset, an end-of-stream marker, at the end of the file. */
async function readFooter(file: BlockSource, where: string): Promise<SparseHeader> {
  if (file.size < 4 * SECTOR) throw new CorruptImageError(`${where}: the grain directory is at the end, but the file is too small for a footer`);
  const at = file.size - 3 * SECTOR;
  const tail = await file.read(at, 3 * SECTOR);
  const footerMarker = decodeMetadataMarker(tail.subarray(0, SECTOR));
  const eos = decodeMetadataMarker(tail.subarray(2 * SECTOR));
  if (footerMarker?.type !== MarkerType.footer || eos?.type !== MarkerType.endOfStream || eos.sectors !== 0) {
    throw new CorruptImageError(`${where}: the grain directory is at the end, but there is no footer and end-of-stream marker at byte ${at} (a truncated stream?)`);
  }
  const footer = decodeSparseHeader(tail.subarray(SECTOR, 2 * SECTOR), `${where} footer at byte ${at + SECTOR}`);
  if (footer.gdOffset === "end") throw new CorruptImageError(`${where}: the footer at byte ${at + SECTOR} does not say where the grain directory is either`);
  return footer;
}

/** Where every grain table is, sorted, each inside the file, clear of the metadata and of the others. */
async function checkGrainDirectory(file: BlockSource, gd: PagedTable, tableBytes: number, metadata: MetadataRegions, where: string): Promise<Float64Array> {
  let starts = new Float64Array(Math.min(gd.entries, 4096));
  let count = 0;
  for await (const { page, first, count: n } of gd.scan()) {
    for (let i = 0; i < n; i++) {
      const sector = page.readUInt32LE(i * 4);
      if (sector === 0) continue;
      const at = sector * SECTOR;
      const what = `${where}: grain directory entry ${first + i}`;
      if (at + tableBytes > file.size) throw new CorruptImageError(`${what} points at byte ${at}, past the end of the file (${file.size} bytes)`);
      const inside = metadata.overlap(at, tableBytes);
      if (inside) throw new CorruptImageError(`${what} points at byte ${at}, inside ${inside}`);
      if (count === starts.length) {
        const bigger = new Float64Array(starts.length * 2);
        bigger.set(starts);
        starts = bigger;
      }
      starts[count++] = at;
    }
  }
  const sorted = starts.slice(0, count).sort();
  for (let i = 1; i < sorted.length; i++) {
    if (sorted[i] < sorted[i - 1] + tableBytes) throw new CorruptImageError(`${where}: two grain tables overlap at byte ${sorted[i]}`);
  }
  return sorted;
}
