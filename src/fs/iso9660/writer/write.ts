/**
 * Phase 3 of `platter iso`: the image, front to back, to any BlockSink (a
 * file, a device, stdout). File contents are streamed in chunks; the holes of
 * sparse source files are not read and become holes of the output file.
 */
import { closeSync, openSync, readSync } from "node:fs";
import type { BlockSink } from "../../../io/block-source.js";
import { DeviceError, ioError } from "../../../errors.js";
import { fileDataRanges } from "../../../io/file-source.js";
import { FIRST_DESCRIPTOR_SECTOR, SECTOR_SIZE, SYSTEM_AREA_SECTORS } from "../constants.js";
import {
  BOOT_INFO_CHECKSUM_START,
  BOOT_INFO_TABLE_OFFSET,
  BootInfoChecksum,
  encodeBootInfoTable,
  encodeBootRecord,
} from "../el-torito.js";
import { encodeTerminator } from "../volume-descriptor.js";
import { extentOrder, type ImageLayout } from "./layout.js";
import { SequentialOutput } from "./output.js";
import { dataPath, type FileData, type ImagePlan } from "./plan.js";
import { showPath } from "./scan.js";
import {
  isoPathTableFolders,
  jolietPathTableFolders,
  renderBootCatalog,
  renderIsoDirectory,
  renderJolietDirectory,
  renderPathTable,
  renderVolumeDescriptors,
} from "./records.js";

const CHUNK = 1 << 20;
/** Files at least this big are asked for their holes (SEEK_DATA); smaller ones are just read. */
const SPARSE_CHECK_MIN = 1 << 20;

export interface WriteProgress {
  done: number;
  total: number;
}

export interface WriteOptions {
  /** The first 16 sectors (an isohybrid MBR/GPT); zeros when absent. */
  systemArea?: Buffer;
  /** What goes after the file data (a GPT's backup), at most layout.tailSectors blocks. */
  tail?: Buffer;
  onProgress?: (p: WriteProgress) => void;
}


export async function writeImage(plan: ImagePlan, layout: ImageLayout, sink: BlockSink, options: WriteOptions = {}): Promise<void> {
  const out = new SequentialOutput(sink);
  const total = layout.volumeSpaceSize * SECTOR_SIZE;
  let lastReport = 0;
  const progress = (force = false) => {
    if (!options.onProgress) return;
    if (force || out.position - lastReport >= 16 << 20) {
      lastReport = out.position;
      options.onProgress({ done: out.position, total });
    }
  };
  const expectAt = (block: number, what: string) => {
    if (out.position !== block * SECTOR_SIZE) {
      throw new Error(`iso writer: ${what} planned at block ${block} but the output is at byte ${out.position}`);
    }
  };

  const systemArea = options.systemArea ?? Buffer.alloc(SYSTEM_AREA_SECTORS * SECTOR_SIZE);
  await out.write(systemArea);
  const { primary, joliet } = renderVolumeDescriptors(plan, layout);
  expectAt(FIRST_DESCRIPTOR_SECTOR, "primary volume descriptor");
  await out.write(primary);
  if (layout.bootRecord !== null && layout.bootCatalog !== null) await out.write(encodeBootRecord(layout.bootCatalog));
  if (joliet) await out.write(joliet);
  expectAt(layout.terminator, "descriptor set terminator");
  await out.write(encodeTerminator());
  if (layout.bootCatalog !== null) await out.write(renderBootCatalog(plan));

  const pathTables = async (folders: Parameters<typeof renderPathTable>[0], at: { l: number; m: number }) => {
    expectAt(at.l, "type L path table");
    await out.write(renderPathTable(folders, "L"));
    await out.padTo(SECTOR_SIZE);
    expectAt(at.m, "type M path table");
    await out.write(renderPathTable(folders, "M"));
    await out.padTo(SECTOR_SIZE);
  };
  await pathTables(isoPathTableFolders(plan.isoDirs), layout.isoPathTable);
  if (layout.jolietPathTable) await pathTables(jolietPathTableFolders(plan.jolietDirs), layout.jolietPathTable);

  for (const dir of extentOrder(plan)) {
    expectAt(dir.block, "directory");
    const { extent, continuation } = renderIsoDirectory(plan, dir);
    if (extent.length !== dir.sectors * SECTOR_SIZE || continuation.length !== dir.continuationSectors * SECTOR_SIZE) {
      throw new Error(`iso writer: a directory changed size between layout and write (block ${dir.block})`);
    }
    await out.write(extent);
    await out.write(continuation);
  }
  for (const dir of plan.jolietDirs) {
    expectAt(dir.block, "Joliet directory");
    await out.write(renderJolietDirectory(dir));
  }
  progress(true);

  for (const file of plan.files) {
    if (file.size === 0) continue;
    expectAt(file.block, `data of ${showPath(dataPath(file))}`);
    await copyFile(out, file, progress);
    await out.padTo(SECTOR_SIZE);
  }
  expectAt(layout.dataEnd, "end of the file data");
  const tail = options.tail ?? Buffer.alloc(0);
  await out.zeros(layout.tailSectors * SECTOR_SIZE - tail.length);
  await out.write(tail);
  await out.finish();
  await sink.setSize(total);
  progress(true);
}

/** Read exactly `into.length` bytes at `offset`, failing if the file is shorter now than when it was scanned. */
function readExactly(fd: number, into: Buffer, offset: number, path: Buffer): void {
  let done = 0;
  while (done < into.length) {
    let n: number;
    try {
      n = readSync(fd, into, done, into.length - done, offset + done);
    } catch (err) {
      throw ioError(err, `${showPath(path)}: read at offset ${offset + done}`);
    }
    if (n === 0) throw new DeviceError(`${showPath(path)}: the file shrank while the image was being written`, "EIO");
    done += n;
  }
}

/**
 * One file's bytes into the image. Reads are synchronous, straight into the
 * output buffer: the write of the previous buffer runs meanwhile on libuv's
 * threads, and thousands of small files do not cost an await each.
 */
async function copyFile(out: SequentialOutput, file: FileData, progress: () => void): Promise<void> {
  const path = dataPath(file);
  let fd: number;
  try {
    fd = openSync(path, "r");
  } catch (err) {
    throw ioError(err, showPath(path));
  }
  try {
    // A boot image is read whole (its first bytes get the boot info table); big files skip their holes.
    const patch = file.bootInfoTable ? bootInfoTable(fd, file, path) : null;
    const ranges = !patch && file.size >= SPARSE_CHECK_MIN ? fileDataRanges(fd, 0, file.size) : [[0, file.size] as [number, number]];
    let pos = 0;
    for (const [start, length] of ranges) {
      if (start > pos) await out.zeros(start - pos);
      for (let o = start; o < start + length; o += CHUNK) {
        const n = Math.min(CHUNK, start + length - o);
        const into = await out.reserve(n);
        readExactly(fd, into, o, path);
        if (patch) overlay(into, o, patch, BOOT_INFO_TABLE_OFFSET);
        out.commit(n);
        progress();
      }
      pos = start + length;
    }
    if (pos < file.size) await out.zeros(file.size - pos);
  } finally {
    closeSync(fd);
  }
}

/** Put `patch`, which belongs at file offset `at`, into the chunk `into` that starts at file offset `chunkStart`. */
function overlay(into: Buffer, chunkStart: number, patch: Buffer, at: number): void {
  const from = Math.max(at, chunkStart);
  const to = Math.min(at + patch.length, chunkStart + into.length);
  if (from < to) patch.copy(into, from - chunkStart, from - at, to - at);
}

/** The boot info table for a BIOS boot image: its own location, length and the checksum of bytes 64..end. */
function bootInfoTable(fd: number, file: FileData, path: Buffer): Buffer {
  const sum = new BootInfoChecksum();
  const buf = Buffer.alloc(CHUNK);
  for (let o = BOOT_INFO_CHECKSUM_START; o < file.size; o += CHUNK) {
    const chunk = buf.subarray(0, Math.min(CHUNK, file.size - o));
    readExactly(fd, chunk, o, path);
    sum.update(chunk);
  }
  return encodeBootInfoTable({ pvdBlock: FIRST_DESCRIPTOR_SECTOR, fileBlock: file.block, fileLength: file.size, checksum: sum.digest() });
}
