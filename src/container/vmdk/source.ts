/**
 * A VMDK as the disk it holds: one or more extents in the descriptor's
 * order — hosted sparse extents (the image file itself for
 * monolithicSparse and streamOptimized, "-s001.vmdk" files for
 * twoGbMaxExtentSparse), flat files (monolithicFlat, twoGbMaxExtentFlat,
 * VMFS), or zeros. Extent files are opened relative to the descriptor's
 * folder as raw files; a parent (parentFileNameHint) through every layer,
 * and its unwritten grains read from there.
 */
import { CorruptImageError, DeviceError, UnsupportedError } from "../../errors.js";
import type { BlockSource } from "../../io/block-source.js";
import { CheckFindings, errorSink } from "../check-findings.js";
import type { ContainerCheckReport, ContainerContext, ContainerSource } from "../format.js";
import { blockExtents } from "../vdisk/block-walk.js";
import { type DiskExtent, MappedDisk } from "../vdisk/mapped-disk.js";
import { lastPathComponent, openFirstRelated } from "../vdisk/related.js";
import { type Descriptor, type ExtentLine, looksLikeDescriptor, MAX_DESCRIPTOR_BYTES, NO_PARENT_CID, parseDescriptor } from "./descriptor.js";
import { SparseExtent } from "./sparse-extent.js";
import { decodeSparseHeader, hasSparseMagic, SECTOR } from "./sparse-header.js";

type OpenedExtent = { start: number; length: number; line: ExtentLine } & (
  | { kind: "sparse"; sparse: SparseExtent }
  | { kind: "flat"; file: BlockSource; offset: number }
  | { kind: "zero" }
);

export class VmdkSource extends MappedDisk implements ContainerSource {
  readonly format = "vmdk";
  readonly seekable = true;

  private constructor(
    private readonly file: BlockSource,
    private readonly descriptor: Descriptor,
    private readonly opened: OpenedExtent[],
    /** Extent files this source opened (closed with it). */
    private readonly owned: BlockSource[],
    parent: BlockSource | undefined,
    private readonly parentFile: string | undefined,
  ) {
    const last = opened[opened.length - 1];
    super(file.name, last ? last.start + last.length : 0, 512, parent);
  }

  static async open(file: BlockSource, context: ContainerContext): Promise<VmdkSource> {
    const where = `${file.name}: VMDK`;
    const owned: BlockSource[] = [];
    try {
      const head = await file.read(0, Math.min(file.size, SECTOR));
      let descriptor: Descriptor;
      let opened: OpenedExtent[];
      const embedded = hasSparseMagic(head) ? decodeSparseHeader(head, `${where} header`) : undefined;
      if (embedded && embedded.capacity > 0) {
        // A hosted sparse file is its own one extent, whatever its embedded descriptor's extent line says (as qemu reads it).
        const sparse = await SparseExtent.open(file, where, context.lenient);
        const text = await readDescriptorText(file);
        descriptor = text === undefined ? bareDescriptor(sparse) : parseDescriptor(text, `${where} embedded descriptor`);
        const line: ExtentLine = { access: "RW", sectors: sparse.header.capacity, type: "SPARSE", file: file.name, offset: 0 };
        opened = [{ kind: "sparse", sparse, start: 0, length: sparse.capacityBytes, line }];
      } else {
        const text = await readDescriptorText(file);
        if (text === undefined) throw new CorruptImageError(`${where}: neither a sparse extent nor a descriptor`);
        descriptor = parseDescriptor(text, `${where} descriptor`);
        opened = await openExtents(descriptor, context, owned, where);
      }
      const { parent, name } = await openParent(descriptor, context, where);
      return new VmdkSource(file, descriptor, opened, owned, parent, name);
    } catch (err) {
      for (const source of owned) await source.close().catch(() => {});
      throw err;
    }
  }

  describe(): Record<string, unknown> {
    const { descriptor } = this;
    const firstSparse = this.opened.find((e) => e.kind === "sparse");
    return {
      format: "vmdk",
      subformat: descriptor.createType,
      virtualSize: this.size,
      fileSize: this.file.size,
      cid: descriptor.cid,
      parentCid: descriptor.parentCid,
      ...(firstSparse?.kind === "sparse" ? { clusterSize: firstSparse.sparse.grainBytes } : {}),
      ...(descriptor.ddb.adapterType ? { adapterType: descriptor.ddb.adapterType } : {}),
      ...(descriptor.ddb.virtualHWVersion ? { hwVersion: descriptor.ddb.virtualHWVersion } : {}),
      extents: this.opened.map((e) => ({
        type: e.line.type,
        access: e.line.access,
        virtualSize: e.length,
        ...(e.line.file !== undefined ? { file: e.line.file } : {}),
        ...(e.kind === "sparse" ? e.sparse.describe() : {}),
        ...(e.kind === "flat" && e.offset !== 0 ? { offset: e.offset } : {}),
      })),
      ...(descriptor.parentFileNameHint !== undefined ? { parentFileNameHint: descriptor.parentFileNameHint, parentFile: this.parentFile ?? null, backingFile: this.parentFile ?? descriptor.parentFileNameHint } : {}),
    };
  }

  /** `platter check` of every sparse extent (a missing extent file refuses the open: check-image reports that). */
  async check(): Promise<ContainerCheckReport> {
    const findings = new CheckFindings();
    for (const extent of this.opened) if (extent.kind === "sparse") await extent.sparse.check(errorSink(findings), extent.start);
    return findings.report("vmdk");
  }

  override async close(): Promise<void> {
    for (const source of this.owned) await source.close().catch(() => {});
    await super.close();
  }

  protected async *extents(offset: number, length: number): AsyncGenerator<DiskExtent> {
    const end = offset + length;
    for (const extent of this.opened) {
      const from = Math.max(offset, extent.start);
      const to = Math.min(end, extent.start + extent.length);
      if (from >= to) continue;
      switch (extent.kind) {
        case "zero":
          yield { kind: "zero", guest: from, length: to - from };
          break;
        case "flat":
          yield { kind: "data", guest: from, length: to - from, file: extent.file, host: extent.offset + (from - extent.start) };
          break;
        case "sparse": {
          const { sparse } = extent;
          for await (const e of blockExtents(from - extent.start, to - from, sparse.grainBytes, (grain) => sparse.lookup(grain))) {
            yield { ...e, guest: e.guest + extent.start };
          }
          break;
        }
      }
    }
  }
}

/** The descriptor text of a file: embedded in a sparse extent, or the whole (small) file. */
export async function readDescriptorText(file: BlockSource): Promise<string | undefined> {
  const head = await file.read(0, Math.min(file.size, SECTOR));
  if (hasSparseMagic(head)) {
    const header = decodeSparseHeader(head, `${file.name}: VMDK header`);
    if (header.descriptorOffset === 0 || header.descriptorSize === 0) return undefined;
    const at = header.descriptorOffset * SECTOR;
    const length = Math.min(header.descriptorSize * SECTOR, MAX_DESCRIPTOR_BYTES, Math.max(0, file.size - at));
    return (await file.read(at, length)).toString("utf8").replace(/\0.*$/s, "");
  }
  if (!looksLikeDescriptor(head)) return undefined;
  if (file.size > MAX_DESCRIPTOR_BYTES) throw new CorruptImageError(`${file.name}: a VMDK descriptor of ${file.size} bytes (at most ${MAX_DESCRIPTOR_BYTES})`);
  return (await file.read(0, file.size)).toString("utf8");
}

/** What a sparse file without an embedded descriptor is. */
function bareDescriptor(sparse: SparseExtent): Descriptor {
  return { createType: sparse.compressed ? "streamOptimized" : "monolithicSparse", cid: "", parentCid: NO_PARENT_CID, extents: [], ddb: {} };
}

async function openExtents(descriptor: Descriptor, context: ContainerContext, owned: BlockSource[], where: string): Promise<OpenedExtent[]> {
  const opened: OpenedExtent[] = [];
  let start = 0;
  for (const line of descriptor.extents) {
    const length = line.sectors * SECTOR;
    const name = line.file as string;
    const what = `${where} extent "${name ?? line.type}"`;
    if (line.type === "ZERO" || line.access === "NOACCESS") {
      opened.push({ kind: "zero", start, length, line });
    } else if (line.type === "FLAT" || line.type === "VMFS") {
      const file = await openExtentFile(context, name, owned, what);
      const offset = line.offset * SECTOR;
      if (offset + length > file.size) {
        throw new CorruptImageError(`${what}: ${length} bytes from byte ${offset} of a ${file.size}-byte file; the extent is truncated`);
      }
      opened.push({ kind: "flat", file, offset, start, length, line });
    } else if (line.type === "SPARSE") {
      const file = await openExtentFile(context, name, owned, what);
      const head = await file.read(0, Math.min(file.size, SECTOR));
      if (!hasSparseMagic(head)) {
        throw new UnsupportedError(`${what}: not a hosted sparse extent ("KDMV"): ${head.toString("latin1", 0, 4) === "COWD" ? "a VMware 3 (COWD) extent" : "unknown contents"}`);
      }
      const sparse = await SparseExtent.open(file, what, context.lenient);
      if (sparse.capacityBytes < length) throw new CorruptImageError(`${what}: holds ${sparse.capacityBytes} bytes, the descriptor gives it ${length}`);
      opened.push({ kind: "sparse", sparse, start, length, line });
    } else {
      throw new UnsupportedError(`${what}: ${line.type} extents are not supported (platter reads FLAT, VMFS, SPARSE and ZERO)`);
    }
    start += length;
    if (!Number.isSafeInteger(start)) throw new CorruptImageError(`${where}: the extents add up to more than any disk`);
  }
  if (opened.length === 0) throw new CorruptImageError(`${where}: the descriptor lists no extent`);
  return opened;
}

async function openExtentFile(context: ContainerContext, name: string, owned: BlockSource[], what: string): Promise<BlockSource> {
  const found = await openFirstRelated(context, [...new Set([name, lastPathComponent(name) ?? name])], { raw: true });
  if (!found) throw new DeviceError(`${what}: no such file next to the descriptor`, "ENOENT");
  owned.push(found.source);
  return found.source;
}

/**
 * The parent of a delta disk, through every layer. Its CID should be the
 * child's parentCID; another means the parent was written since (qemu then
 * refuses to read; platter warns and reads).
 */
async function openParent(descriptor: Descriptor, context: ContainerContext, where: string): Promise<{ parent?: BlockSource; name?: string }> {
  const hint = descriptor.parentFileNameHint;
  if (hint === undefined || descriptor.parentCid === NO_PARENT_CID || context.noBacking) return {};
  const candidates = [...new Set([hint, lastPathComponent(hint) ?? hint])];
  const raw = await openFirstRelated(context, candidates, { raw: true });
  if (!raw) throw new DeviceError(`${where}: cannot find the parent disk '${hint}'`, "ENOENT");
  try {
    const text = await readDescriptorText(raw.source);
    const cid = text === undefined ? undefined : parseDescriptor(text, `${raw.name}: VMDK descriptor`).cid;
    if (cid !== undefined && cid !== descriptor.parentCid) {
      context.onWarning?.(`${where}: its parent ${raw.name} has CID ${cid}, not ${descriptor.parentCid} as recorded: the parent was written since the child was made`);
    }
  } finally {
    await raw.source.close();
  }
  return { parent: await context.openRelated(raw.name), name: raw.name };
}
