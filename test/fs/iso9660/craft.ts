/**
 * Crafting hostile or unusual ISOs for the reader tests: a real image made by
 * xorriso from a few files, then chosen bytes of it changed in memory.
 */
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { writeBoth32 } from "../../../src/fs/iso9660/both-endian.js";
import { SECTOR_SIZE } from "../../../src/fs/iso9660/constants.js";
import { openIso9660, type Iso9660FileSystem, type IsoNode } from "../../../src/fs/iso9660/index.js";
import { MemorySource } from "../../../src/io/memory-source.js";
import { sh } from "../../helpers/run.js";
import { tempDir } from "../../helpers/tmp.js";

export interface ImageOptions {
  /** Adds what files cannot say (hard links...) to the source folder. */
  prepare?: (src: string) => void;
  /** More `xorriso -as mkisofs` options. */
  args?: string;
  /** The writer: xorriso by default. */
  tool?: "xorriso" | "genisoimage";
}

/** An xorriso (or genisoimage) image, Rock Ridge without Joliet, of the given files; returns its path and bytes. */
export async function xorrisoImage(files: Record<string, string | Buffer>, options: ImageOptions = {}): Promise<{ path: string; image: Buffer }> {
  const dir = tempDir();
  const src = join(dir, "src");
  mkdirSync(src);
  for (const [name, data] of Object.entries(files)) {
    mkdirSync(dirname(join(src, name)), { recursive: true });
    writeFileSync(join(src, name), data);
  }
  options.prepare?.(src);
  const path = join(dir, "image.iso");
  const writer = options.tool === "genisoimage" ? "genisoimage" : "xorriso -report_about SORRY -as mkisofs";
  const command = `SOURCE_DATE_EPOCH=1700000000 ${writer} -quiet -R ${options.args ?? ""} -o ${path} ${src}`;
  try {
    await sh(command);
  } catch (err) {
    // xorriso 1.5.4 once died of SIGSEGV here in a full parallel run ("UNIX-SIGNAL", 0 of 60 runs alone): the
    // fixture is built again once; any other failure, or a second crash, fails the test.
    if (!/UNIX-SIGNAL/.test(String(err))) throw err;
    await sh(command);
  }
  return { path, image: readFileSync(path) };
}

/** Byte offset of the plain ISO 9660 directory record with this identifier ("B.TXT;1"). */
export function recordOffset(image: Buffer, identifier: string): number {
  const id = Buffer.from(identifier, "latin1");
  for (let at = image.indexOf(id); at >= 0; at = image.indexOf(id, at + 1)) {
    const record = at - 33;
    if (record >= 0 && image[record + 32] === id.length) return record;
  }
  throw new Error(`no directory record ${identifier}`);
}

export interface RecordFields {
  extAttrLength?: number;
  extent?: number;
  dataLength?: number;
  fileUnitSize?: number;
  interleaveGap?: number;
}

export function patchRecord(image: Buffer, offset: number, fields: RecordFields): void {
  if (fields.extAttrLength !== undefined) image[offset + 1] = fields.extAttrLength;
  if (fields.extent !== undefined) writeBoth32(image, offset + 2, fields.extent);
  if (fields.dataLength !== undefined) writeBoth32(image, offset + 10, fields.dataLength);
  if (fields.fileUnitSize !== undefined) image[offset + 26] = fields.fileUnitSize;
  if (fields.interleaveGap !== undefined) image[offset + 27] = fields.interleaveGap;
}

export function recordExtent(image: Buffer, offset: number): number {
  return image.readUInt32LE(offset + 2);
}

/** Write `data` at a block of the image. */
export function putBlock(image: Buffer, block: number, data: Buffer): void {
  data.copy(image, block * SECTOR_SIZE);
}

export async function openImage(image: Buffer, name = "crafted.iso"): Promise<Iso9660FileSystem> {
  return openIso9660(new MemorySource(image, 2048, name));
}

export async function nodeAt(fs: Iso9660FileSystem, path: string): Promise<IsoNode> {
  let node = await fs.root();
  for (const part of path.split("/").filter(Boolean)) {
    const next = await fs.lookup(node, part);
    if (!next) throw new Error(`${path}: ${part} not found`);
    node = next;
  }
  return node;
}
