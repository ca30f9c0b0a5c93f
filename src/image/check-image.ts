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
import { HEAD_BYTES } from "../container/format.js";
import { CONTAINER_FORMATS } from "../container/registry.js";
import { PlatterError } from "../errors.js";
import type { BlockSource } from "../io/block-source.js";
import { FileSource } from "../io/file-source.js";
import { mergeRanges } from "../util/ranges.js";
import { openImage, type OpenedImage } from "./open-image.js";
import { reportPartitions } from "./partition-report.js";

/** Decoding test reads this much at a time. */
const TEST_CHUNK = 4 << 20;
/** Failed pieces one after another before the rest of a stream is given up as unreadable. */
const MAX_FAILED_IN_A_ROW = 4;
const MAX_LISTED = 100;

export interface DamagedRange {
  offset: number;
  length: number;
  /** The partitions of the disk that hold some of it (their number, filesystem and label), when the disk opens. */
  partitions: Array<{ number: number; filesystem: string | null; label: string | null }>;
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
    const head = await file.read(0, Math.min(HEAD_BYTES, file.size));
    let format: ContainerFormat | undefined;
    for (const f of CONTAINER_FORMATS) {
      if (await Promise.resolve(f.detect(head, file)).catch(() => false)) {
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

/** Each damaged range with the partitions that hold part of it (the disk's table read through the damage: a warning if it cannot be). */
async function ownersOf(disk: BlockSource, ranges: Array<[number, number]>, warnings: string[]): Promise<DamagedRange[]> {
  if (ranges.length === 0) return [];
  let partitions: Awaited<ReturnType<typeof reportPartitions>>["partitions"] = [];
  try {
    const report = await reportPartitions(disk);
    partitions = report.partitions.filter((p) => !p.container);
  } catch (err) {
    if (!(err instanceof PlatterError)) throw err;
    warnings.push(`the partition table could not be read to name what the damage hits: ${err.message}`);
  }
  return ranges.map(([offset, length]) => ({
    offset,
    length,
    partitions: partitions
      .filter((p) => p.offset < offset + length && offset < p.offset + p.length)
      .map((p) => ({ number: p.number, filesystem: p.filesystem, label: p.label })),
  }));
}

function summarize(path: string, layers: ContainerName[], checks: ContainerCheckReport[], damaged: DamagedRange[], warnings: string[]): ImageCheckReport {
  const corruptions = checks.reduce((n, c) => n + c.corruptions, 0);
  const leaks = checks.reduce((n, c) => n + c.leaks, 0);
  return { image: path, layers, clean: corruptions === 0 && leaks === 0, corruptions, leaks, checks, damaged, warnings };
}
