/**
 * Writing VHD (convert --to vhd). Dynamic by default: footer copy, dynamic
 * header, BAT, then 2 MiB blocks (each a sector bitmap, all set, and the
 * block's bytes, aligned to 4 KiB) as they are first written; all-zero
 * blocks stay unallocated. Fixed (`vhdType: "fixed"`): the disk's bytes as
 * they are, zeros left as holes, then the footer: what Azure takes.
 *
 * The size is kept exact: the footer's current size is the disk's size in
 * bytes (padded to whole sectors, which every disk is), with the CHS
 * geometry that covers it, not rounded down to a geometry as qemu-img does
 * unless told `force_size`. `vhdAlign` rounds it up (Azure wants whole
 * MiB). The creator application is "qem2", the code qemu defined to say
 * "the current size is the size": qemu-img and Hyper-V then agree on it.
 */
import { randomBytes } from "node:crypto";
import { UsageError } from "../../errors.js";
import type { FileSink } from "../../io/file-sink.js";
import { parseSize } from "../../util/units.js";
import type { ContainerSink, ContainerWriter, WriterOptions } from "../format.js";
import { AllocatingSink, type BlockPlace, createImageFile, UNPLACED } from "../vdisk/allocating-sink.js";
import { DYNAMIC_HEADER_BYTES, encodeDynamicHeader } from "./dynamic-header.js";
import { encodeVhdFooter, FOOTER_BYTES, type VhdFooter } from "./footer.js";
import { coveringGeometry } from "./geometry.js";
import { sectorBitmapBytes } from "./source.js";

export interface VhdWriterOptions extends WriterOptions {
  /** "dynamic" (default) or "fixed". */
  vhdType?: string;
  /** Round the virtual size up to a multiple of this (bytes, or a size such as "1MiB"). */
  vhdAlign?: number | string;
}

const BLOCK_SIZE = 2 << 20;
/** The specification's largest disk: 2040 GiB. */
const MAX_SIZE = 2040 * 1024 ** 3;
const BAT_OFFSET = FOOTER_BYTES + DYNAMIC_HEADER_BYTES;
const DATA_ALIGN = 4096;
const CREATOR_VERSION = 0x00000001;

/** The virtual size: the image's, whole sectors, rounded up to `vhdAlign`. */
export function vhdVirtualSize(options: VhdWriterOptions): number {
  const { size } = options;
  if (size === undefined) throw new UsageError("a VHD image needs its virtual size up front");
  if (!Number.isSafeInteger(size) || size < 0) throw new UsageError(`invalid VHD virtual size ${size}`);
  const align = options.vhdAlign === undefined ? 512 : typeof options.vhdAlign === "number" ? options.vhdAlign : parseSize(options.vhdAlign, "VHD alignment");
  if (!Number.isSafeInteger(align) || align <= 0 || align % 512 !== 0) throw new UsageError(`VHD alignment must be a positive multiple of 512 bytes, not ${options.vhdAlign}`);
  const virtual = Math.ceil(size / align) * align;
  if (virtual > MAX_SIZE) throw new UsageError(`a VHD holds at most 2040 GiB; this disk is ${virtual} bytes (use vhdx)`);
  return virtual;
}

function vhdTypeOf(options: VhdWriterOptions): "dynamic" | "fixed" {
  const type = options.vhdType ?? "dynamic";
  if (type !== "dynamic" && type !== "fixed") throw new UsageError(`VHD type must be dynamic or fixed, not ${JSON.stringify(type)}`);
  return type;
}

function footerFor(size: number, diskType: "dynamic" | "fixed"): VhdFooter {
  return {
    features: 0,
    dataOffset: diskType === "fixed" ? null : FOOTER_BYTES,
    timestamp: Math.floor(Date.now() / 1000),
    creatorApp: "qem2",
    creatorVersion: CREATOR_VERSION,
    creatorHostOs: "Wi2k",
    originalSize: size,
    currentSize: size,
    geometry: coveringGeometry(size / 512),
    diskType,
    uniqueId: randomBytes(16),
    savedState: false,
  };
}

export class DynamicVhdSink extends AllocatingSink {
  readonly format = "vhd";
  private readonly footer: Buffer;
  private readonly bitmap: Buffer;
  private readonly batBytes: number;
  /** Where the footer goes: after the last block. */
  private end: number;

  private constructor(file: FileSink, size: number) {
    super(file, size, BLOCK_SIZE);
    this.footer = encodeVhdFooter(footerFor(size, "dynamic"));
    this.bitmap = Buffer.alloc(sectorBitmapBytes(BLOCK_SIZE), 0xff);
    this.batBytes = Math.ceil((this.hosts.length * 4) / 512) * 512;
    this.end = BAT_OFFSET + this.batBytes;
  }

  static async create(path: string, size: number): Promise<DynamicVhdSink> {
    return new DynamicVhdSink(await createImageFile(path), size).start();
  }

  /** A block's bitmap just before its data, the data 4 KiB-aligned. */
  protected place(): BlockPlace {
    const bitmapAt = Math.ceil((this.end + this.bitmap.length) / DATA_ALIGN) * DATA_ALIGN - this.bitmap.length;
    const data = bitmapAt + this.bitmap.length;
    this.end = data + this.blockSize;
    return { data, prefix: { at: bitmapAt, bytes: this.bitmap } };
  }

  protected async finish(): Promise<void> {
    const bat = Buffer.alloc(this.batBytes, 0xff);
    this.hosts.forEach((host, i) => {
      if (host !== UNPLACED) bat.writeUInt32BE((host - this.bitmap.length) / 512, i * 4);
    });
    const header = encodeDynamicHeader({
      tableOffset: BAT_OFFSET,
      maxTableEntries: this.hosts.length,
      blockSize: this.blockSize,
      parentUniqueId: Buffer.alloc(16),
      parentTimestamp: 0,
      parentName: "",
      parentLocators: [],
    });
    await this.file.write(0, Buffer.concat([this.footer, header, bat]));
    await this.file.write(this.end, this.footer);
    await this.file.setSize(this.end + FOOTER_BYTES);
  }
}

/** A fixed VHD: the disk at its own offsets (zeros as holes), the footer after it. */
export class FixedVhdSink extends AllocatingSink {
  readonly format = "vhd";
  private readonly footer: Buffer;

  private constructor(file: FileSink, size: number) {
    // One "block", the whole disk, placed at offset 0 from the start: writes go straight through.
    super(file, size, Math.max(size, 1));
    this.hosts.fill(0);
    this.footer = encodeVhdFooter(footerFor(size, "fixed"));
  }

  static async create(path: string, size: number): Promise<FixedVhdSink> {
    return new FixedVhdSink(await createImageFile(path), size).start();
  }

  protected place(): BlockPlace {
    return { data: 0 };
  }

  protected async finish(): Promise<void> {
    await this.file.write(this.size, this.footer);
    await this.file.setSize(this.size + FOOTER_BYTES);
  }
}

export const vhdWriter: ContainerWriter = {
  name: "vhd",
  extensions: [".vhd"],
  async create(path: string, options: VhdWriterOptions): Promise<ContainerSink> {
    const type = vhdTypeOf(options);
    const size = vhdVirtualSize(options);
    return type === "fixed" ? FixedVhdSink.create(path, size) : DynamicVhdSink.create(path, size);
  },
};
