/**
 * `platter check IMAGE`: is each container layer of the image consistent?
 * A layer whose format has a structural check (qcow2: refcounts and tables,
 * as `qemu-img check` counts them) gets it; the compressed layers are
 * decoded to the end with every checksum verified, as `zstd -t` / `xz -t`
 * test them. An image too damaged to open is still checked by its format
 * where it can be. Beyond the format's tool, each range of the disk a
 * corruption puts in doubt is named by the partition (and filesystem) that
 * holds it.
 */
import type { ContainerCheckReport, ContainerFormat, ContainerName, ContainerSource } from "../container/format.js";
import { detectionBytes } from "../container/format.js";
import { CONTAINER_FORMATS } from "../container/registry.js";
import { PlatterError, UnsupportedError } from "../errors.js";
import { openFilesystem } from "../fs/open.js";
import type { FileSystem, FsNode } from "../fs/types.js";
import type { BlockSource } from "../io/block-source.js";
import { FileSource } from "../io/file-source.js";
import { mergeRanges } from "../util/ranges.js";
import { type FileHit, ownersInFilesystem, type RangeOwners, type RegionHit } from "./damage-owners.js";
import { readDiskTable } from "./disk-table.js";
import { openImage, type OpenedImage } from "./open-image.js";
import { partitionView } from "./partition-choice.js";
import { reportPartitions } from "./partition-report.js";

/** Decoding test reads this much at a time. */
const TEST_CHUNK = 4 << 20;
/** Failed pieces one after another before the rest of a stream is given up as unreadable. */
const MAX_FAILED_IN_A_ROW = 4;
const MAX_LISTED = 100;

/** A partition (or, `number` null, the whole disk when it has no table) that holds some of a damaged range. */
export interface DamagedPartition {
  number: number | null;
  filesystem: string | null;
  label: string | null;
  /**
   * The files (and folders) the range hits, in tree order, the first
   * OWNERS_LISTED of them; null when platter does not read this filesystem,
   * or the damage keeps it from opening or being walked (a warning says why).
   */
  files: FileHit[] | null;
  filesNotListed: number;
  /** The filesystem's own structures it hits ("inode table of group 3"). */
  metadata: RegionHit[];
  metadataNotListed: number;
}

export interface DamagedRange {
  offset: number;
  length: number;
  /** The partitions of the disk that hold some of it, when the disk opens. */
  partitions: DamagedPartition[];
}

export interface ImageCheckReport {
  image: string;
  /** The layers, outermost first; [] for a raw image (nothing to check). */
  layers: ContainerName[];
  clean: boolean;
  corruptions: number;
  leaks: number;
  /** One report per layer checked. */
  checks: ContainerCheckReport[];
  /** Disk bytes in doubt, with the partitions that hold them. */
  damaged: DamagedRange[];
  warnings: string[];
}

export async function checkImage(path: string): Promise<ImageCheckReport> {
  const warnings: string[] = [];
  let image: OpenedImage;
  try {
    image = await openImage(path, { purpose: "checking", noBacking: true, indexCache: false, lenient: true, onWarning: (m) => warnings.push(m) });
  } catch (err) {
    if (!(err instanceof PlatterError)) throw err;
    return checkUnopenable(path, err, warnings);
  }
  try {
    const checks: ContainerCheckReport[] = [];
    for (let i = 0; i < image.layers.length; i++) {
      const below: BlockSource = i === 0 ? image.file : image.layers[i - 1];
      const report = await checkLayer(image.layers[i], below);
      if (report) checks.push(report);
    }
    // Layers with no structural check are tested by decoding them all: the innermost read decodes every layer above it.
    const untested = image.layers.filter((l) => !checks.some((c) => c.format === l.format));
    if (untested.length > 0) checks.push(await decodeTest(image.layers.at(-1) as ContainerSource, untested.map((l) => l.format).join(" over ")));
    const damaged = await ownersOf(image.source, mergeRanges(checks.flatMap((c) => c.damagedGuestRanges)), warnings);
    return summarize(path, image.layers.map((l) => l.format), checks, damaged, warnings);
  } finally {
    await image.close();
  }
}

async function checkLayer(layer: ContainerSource, below: BlockSource): Promise<ContainerCheckReport | undefined> {
  if (layer.check) return layer.check();
  return formatNamed(layer.format)?.check?.(below);
}

function formatNamed(name: ContainerName): ContainerFormat | undefined {
  return CONTAINER_FORMATS.find((f) => f.name === name);
}

/** An image openImage refuses: its outermost format checks it if it can; else the refusal is the finding. */
async function checkUnopenable(path: string, refusal: Error, warnings: string[]): Promise<ImageCheckReport> {
  const file = await FileSource.open(path);
  try {
    const { head, tail } = await detectionBytes(file);
    let format: ContainerFormat | undefined;
    for (const f of CONTAINER_FORMATS) {
      if (await Promise.resolve(f.detect(head, file, tail)).catch(() => false)) {
        format = f;
        break;
      }
    }
    if (!format) throw refusal;
    warnings.push(`${path} does not open (${refusal.message}); checked without reading the disk it holds`);
    const report = format.check ? await format.check(file) : refusedReport(format.name, refusal.message);
    if (report.clean) {
      // Sound tables, yet refused (qemu's corrupt flag, an unsupported feature): that is the finding.
      report.problems.push({ severity: "corruption", message: `ERROR ${refusal.message}` });
      report.corruptions++;
      report.clean = false;
    }
    const damaged = report.damagedGuestRanges.map(([offset, length]) => ({ offset, length, partitions: [] }));
    return summarize(path, [format.name], [report], damaged, warnings);
  } finally {
    await file.close();
  }
}

function refusedReport(format: ContainerName, message: string): ContainerCheckReport {
  return { format, clean: false, corruptions: 1, leaks: 0, problems: [{ severity: "corruption", message: `ERROR ${message}` }], problemsNotListed: 0, damagedGuestRanges: [] };
}

/**
 * Read every decoded byte (each checksum verified on the way). Each corrupt
 * piece is a finding; after a run of them (a truncated or unframed stream,
 * where everything after the damage fails) the rest of the image is in doubt.
 */
async function decodeTest(source: ContainerSource, formats: string): Promise<ContainerCheckReport> {
  const report: ContainerCheckReport = { format: source.format, clean: true, corruptions: 0, leaks: 0, problems: [], problemsNotListed: 0, damagedGuestRanges: [] };
  const buf = Buffer.allocUnsafe(TEST_CHUNK);
  let failedInARow = 0;
  for (let pos = 0; pos < source.size; pos += TEST_CHUNK) {
    const n = Math.min(TEST_CHUNK, source.size - pos);
    try {
      await source.read(pos, n, buf.subarray(0, n));
      failedInARow = 0;
    } catch (err) {
      if (!(err instanceof PlatterError)) throw err;
      report.clean = false;
      report.corruptions++;
      const giveUp = ++failedInARow >= MAX_FAILED_IN_A_ROW;
      const guest: [number, number] = [pos, giveUp ? source.size - pos : n];
      if (report.problems.length < MAX_LISTED) report.problems.push({ severity: "corruption", message: `ERROR ${formats}: ${err.message}`, guest });
      else report.problemsNotListed++;
      report.damagedGuestRanges.push(guest);
      if (giveUp) break;
    }
  }
  report.damagedGuestRanges = mergeRanges(report.damagedGuestRanges);
  return report;
}

/** Where a filesystem may be: a partition, or the whole disk. */
interface Holder {
  number: number | null;
  offset: number;
  length: number;
  filesystem: string | null;
  label: string | null;
  source: () => BlockSource;
}

/**
 * Each damaged range (sorted, merged) with the partitions that hold part of
 * it, and in each the files and structures it hits, when platter reads that
 * filesystem (the disk's table and filesystems read through the damage: a
 * warning when they cannot be).
 */
async function ownersOf(disk: BlockSource, ranges: Array<[number, number]>, warnings: string[]): Promise<DamagedRange[]> {
  const damaged: DamagedRange[] = ranges.map(([offset, length]) => ({ offset, length, partitions: [] }));
  if (ranges.length === 0) return damaged;
  let holders: Holder[] = [];
  try {
    holders = await holdersOf(disk, warnings);
  } catch (err) {
    if (!(err instanceof PlatterError)) throw err;
    warnings.push(`the partition table could not be read to name what the damage hits: ${err.message}`);
  }
  for (const holder of holders) {
    const hit = ranges.flatMap(([offset, length], i) => {
      const from = Math.max(offset, holder.offset);
      const to = Math.min(offset + length, holder.offset + holder.length);
      return from < to ? [{ i, inside: [from - holder.offset, to - from] as [number, number] }] : [];
    });
    if (hit.length === 0) continue;
    const owners = holder.filesystem ? await ownersInHolder(holder, hit.map((h) => h.inside), warnings) : null;
    for (const [k, { i }] of hit.entries()) {
      const found = owners?.[k];
      (damaged[i] as DamagedRange).partitions.push({
        number: holder.number,
        filesystem: holder.filesystem,
        label: holder.label,
        files: found?.files ?? null,
        filesNotListed: found?.filesNotListed ?? 0,
        metadata: found?.metadata ?? [],
        metadataNotListed: found?.metadataNotListed ?? 0,
      });
    }
  }
  return damaged;
}

/**
 * The partitions of the disk (not extended containers), or the whole disk
 * when it has none and holds a filesystem; the table's and probes' warnings
 * (a partition whose filesystem the damage hides) go to `warnings`.
 */
async function holdersOf(disk: BlockSource, warnings: string[]): Promise<Holder[]> {
  const table = await readDiskTable(disk);
  const report = await reportPartitions(disk);
  warnings.push(...report.warnings);
  const partitions = table.partitions.filter((p) => !p.container);
  if (partitions.length === 0) {
    return report.filesystem ? [{ number: null, offset: 0, length: disk.size, filesystem: report.filesystem, label: report.label, source: () => disk }] : [];
  }
  return partitions.map((p) => {
    const probed = report.partitions.find((r) => r.number === p.number);
    return {
      number: p.number,
      offset: p.offset,
      length: p.length,
      filesystem: probed?.filesystem ?? null,
      label: probed?.label ?? null,
      source: () => partitionView(disk, table, p).source,
    };
  });
}

/** What the ranges (offsets inside the holder) hit in its filesystem; null, with a warning when it fails, when platter cannot tell. */
async function ownersInHolder(holder: Holder, ranges: Array<[number, number]>, warnings: string[]): Promise<RangeOwners[] | null> {
  const where = holder.number === null ? `the ${holder.filesystem} filesystem of the disk` : `partition ${holder.number} (${holder.filesystem})`;
  let fs: FileSystem<FsNode>;
  try {
    fs = await openFilesystem(holder.source());
  } catch (err) {
    if (err instanceof UnsupportedError) return null; // not one platter reads files from: only the partition is named
    if (!(err instanceof PlatterError)) throw err;
    warnings.push(`${where} does not open, so the files the damage hits there are not named: ${err.message}`);
    return null;
  }
  try {
    return await ownersInFilesystem(fs, ranges, (message) => warnings.push(`${where}: ${message}`));
  } catch (err) {
    if (!(err instanceof PlatterError)) throw err;
    warnings.push(`${where} could not be walked, so the files the damage hits there are not named: ${err.message}`);
    return null;
  } finally {
    await fs.close();
  }
}

function summarize(path: string, layers: ContainerName[], checks: ContainerCheckReport[], damaged: DamagedRange[], warnings: string[]): ImageCheckReport {
  const corruptions = checks.reduce((n, c) => n + c.corruptions, 0);
  const leaks = checks.reduce((n, c) => n + c.leaks, 0);
  return { image: path, layers, clean: corruptions === 0 && leaks === 0, corruptions, leaks, checks, damaged, warnings };
}
