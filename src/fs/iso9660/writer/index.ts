/**
 * `platter iso` as a library call: scan the folders, plan names and
 * relocations, lay out the blocks, write the image to a file or a sink. The
 * sink can be a pipe: everything is decided before the first byte goes out.
 */
import { promises as fsp } from "node:fs";
import type { BlockSink } from "../../../io/block-source.js";
import { FileSink } from "../../../io/file-sink.js";
import { ioError, UsageError } from "../../../errors.js";
import { SECTOR_SIZE } from "../constants.js";
import { layoutImage, type ImageLayout } from "./layout.js";
import { planImage, type BootImage, type BootImageOptions, type FileData, type ImagePlan, type IsoOptions } from "./plan.js";
import { isoVolumeId, jolietVolumeId, MAX_JOLIET_VOLUME_ID, MAX_VOLUME_ID } from "./records.js";
import { checkSourceFolder, nameText, scanSources, type SourceNode } from "./scan.js";
import { BuildStopped, writeImage, type WriteOptions } from "./write.js";

export { BuildStopped } from "./write.js";

export const BIOS_BOOT = "BIOS boot image";
export const EFI_BOOT = "EFI boot image";

export interface BuildIsoOptions {
  sources: string[];
  volumeId: string;
  rockRidge?: boolean;
  joliet?: boolean;
  biosBoot?: BootImageOptions;
  efiBoot?: BootImageOptions;
  /** SOURCE_DATE_EPOCH: volume dates, and atime/ctime recorded as mtime, so two builds are identical. */
  sourceDateEpoch?: number;
  applicationId?: string;
  /**
   * Leave out files and folders that cannot be read when scanned (with a
   * warning), and write files that cannot be read or changed size since, cut
   * or zero-filled to their scanned size (with a warning), instead of failing.
   */
  skipUnreadable?: boolean;
  /** Files not to put in the image, as "dev:ino" (an image written to a file is left out of itself anyway). */
  exclude?: ReadonlySet<string>;
  /** The system area: given the laid-out plan, the 16 sectors and what goes after the data. */
  systemArea?: SystemAreaBuilder;
  onWarning?: (message: string) => void;
  onProgress?: (p: BuildProgress) => void;
  /** Stops the build: buildIso then rejects with BuildStopped (having removed an output file it made). */
  signal?: AbortSignal;
}

export interface SystemAreaBuilder {
  layoutOptions: { alignSectors?: number; tailSectors?: number };
  /** Reorder the plan's file data before blocks are assigned. */
  arrange?(plan: ImagePlan): void;
  build(plan: ImagePlan, layout: ImageLayout): { systemArea: Buffer; tail: Buffer };
}

export interface BuildProgress {
  phase: "scan" | "write";
  done: number;
  total: number;
}

export interface BuildIsoResult {
  /** Bytes written. */
  size: number;
  files: number;
  folders: number;
  /** Folders moved into rr_moved because they were deeper than 8 levels. */
  relocated: number;
  warnings: string[];
}

/** A boot image must be a non-empty regular file; anything else is a usage error. Returns its size. */
export async function checkBootImage(spec: BootImageOptions, what: string): Promise<number> {
  let stats;
  try {
    stats = await fsp.stat(spec.path);
  } catch (err) {
    throw new UsageError(ioError(err, `${what} ${spec.path}`).message);
  }
  if (!stats.isFile() || stats.size === 0) throw new UsageError(`${what} ${spec.path}: not a non-empty regular file`);
  return stats.size;
}

async function realPath(path: string): Promise<string> {
  try {
    return await fsp.realpath(path);
  } catch (err) {
    throw new UsageError(ioError(err, path).message);
  }
}

/**
 * The tree's node for `file` when it lies inside one of the source folders,
 * so the boot entry and the file in the tree share one extent (isolinux finds
 * its folder that way).
 */
async function findInTree(file: string, sources: readonly string[], root: SourceNode): Promise<SourceNode | null> {
  const real = await realPath(file);
  for (const source of sources) {
    const base = await realPath(source);
    if (!real.startsWith(`${base}/`)) continue;
    let node: SourceNode | undefined = root;
    for (const part of real.slice(base.length + 1).split("/")) {
      node = node?.children?.find((c) => nameText(c) === part);
    }
    if (node?.kind === "file") return node;
  }
  return null;
}

async function bootImage(spec: BootImageOptions | undefined, what: string, sources: readonly string[], root: SourceNode): Promise<BootImage | undefined> {
  if (!spec) return undefined;
  const size = await checkBootImage(spec, what);
  return { spec, size, node: await findInTree(spec.path, sources, root) };
}

/**
 * The volume id as the primary descriptor will hold it: longer than 32
 * characters is a UsageError, as genisoimage and xorriso make it ("Volume ID
 * string too long", "Text too long (33 > 32)"), not a silent cut.
 */
function checkVolumeId(volumeId: string): void {
  const length = isoVolumeId(volumeId).length;
  if (length > MAX_VOLUME_ID) {
    throw new UsageError(`volume id '${volumeId}' is ${length} characters; an ISO 9660 volume id holds at most ${MAX_VOLUME_ID}`);
  }
}

/** Everything checkable before the output is created or truncated: the source folders, boot images, volume id. */
async function checkInputs(options: BuildIsoOptions): Promise<void> {
  for (const source of options.sources) await checkSourceFolder(source);
  if (options.biosBoot) await checkBootImage(options.biosBoot, BIOS_BOOT);
  if (options.efiBoot) await checkBootImage(options.efiBoot, EFI_BOOT);
  checkVolumeId(options.volumeId);
}

/**
 * Build the image of `options.sources` into `output`: a file (created or
 * truncated; left out of the image when it lies inside a source folder;
 * removed again when the build fails or is stopped, so no half-written image
 * is left looking complete), or a sink the caller owns and closes (a pipe).
 */
export async function buildIso(output: string | BlockSink, options: BuildIsoOptions): Promise<BuildIsoResult> {
  await checkInputs(options);
  if (typeof output !== "string") return build(output, options, options.exclude ?? new Set());
  const existing = await fsp.lstat(output).catch(() => null);
  if (existing?.isDirectory()) throw new UsageError(`${output}: is a folder`);
  const sink = await FileSink.open(output, { create: true, truncate: true, sparse: true });
  try {
    const { dev, ino } = await fsp.stat(output);
    const result = await build(sink, options, new Set([...(options.exclude ?? []), `${dev}:${ino}`]), sink.isRegularFile);
    await sink.close();
    return result;
  } catch (err) {
    await sink.close().catch(() => {});
    if (sink.isRegularFile) await fsp.unlink(output).catch(() => {});
    if (err instanceof BuildStopped) throw new BuildStopped(`stopped: ${output} was not finished, and is removed`);
    throw err;
  }
}

async function build(sink: BlockSink, options: BuildIsoOptions, exclude: ReadonlySet<string>, outputStartsEmpty = false): Promise<BuildIsoResult> {
  const warnings: string[] = [];
  const warn = (m: string) => {
    warnings.push(m);
    options.onWarning?.(m);
  };
  const joliet = options.joliet ?? true;
  if (joliet && options.volumeId.length > MAX_JOLIET_VOLUME_ID) {
    // xorriso warns and cuts it too; refusing would make a 20-character label need --no-joliet.
    warn(`volume id '${options.volumeId}' is longer than the ${MAX_JOLIET_VOLUME_ID} characters of a Joliet volume id: Windows shows '${jolietVolumeId(options.volumeId)}'`);
  }
  const root = await scanSources(options.sources, {
    skipUnreadable: options.skipUnreadable,
    exclude,
    onWarning: warn,
    onProgress: (n) => options.onProgress?.({ phase: "scan", done: n, total: 0 }),
  });
  const now = Math.floor(Date.now() / 1000);
  const isoOptions: IsoOptions = {
    rockRidge: options.rockRidge ?? true,
    joliet,
    volumeId: options.volumeId,
    volumeTime: options.sourceDateEpoch ?? now,
    reproducible: options.sourceDateEpoch !== undefined,
    applicationId: options.applicationId ?? "PLATTER",
  };
  const plan = planImage(root, isoOptions, {
    bios: await bootImage(options.biosBoot, BIOS_BOOT, options.sources, root),
    efi: await bootImage(options.efiBoot, EFI_BOOT, options.sources, root),
  });
  for (const w of plan.warnings) warn(w);
  options.systemArea?.arrange?.(plan);
  const layout = layoutImage(plan, options.systemArea?.layoutOptions);
  const system = options.systemArea?.build(plan, layout);
  const writeOptions: WriteOptions = {
    onProgress: (p) => options.onProgress?.({ phase: "write", ...p }),
    skipUnreadable: options.skipUnreadable,
    onWarning: warn,
    signal: options.signal,
    outputStartsEmpty,
    ...(system ? { systemArea: system.systemArea, tail: system.tail } : {}),
  };
  await writeImage(plan, layout, sink, writeOptions);
  const files = new Set<FileData>();
  for (const d of plan.isoDirs) for (const c of d.children) if (c.kind === "file") files.add(c.data);
  return {
    size: layout.volumeSpaceSize * SECTOR_SIZE,
    files: files.size,
    folders: plan.isoDirs.filter((d) => d.node !== null).length,
    relocated: plan.isoDirs.filter((d) => d.trueParent !== null).length,
    warnings,
  };
}
