/**
 * Phase 3 of `platter iso`: the image, front to back, to any BlockSink (a
 * file, a device, stdout). File contents are streamed in chunks; the holes of
 * sparse source files are not read and become holes of the output file.
 */
import { closeSync, constants, fstatSync, openSync, readSync } from "node:fs";
import type { BlockSink } from "../../../io/block-source.js";
import { DeviceError, ioError, PlatterError } from "../../../errors.js";
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
/** An in-kernel copy goes in pieces this big, so a stop or progress report waits for no more than one. */
const KERNEL_COPY_PIECE = 64 << 20;
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
  /** A file that cannot be read now, or changed size since it was scanned, is written as far as it can be, with a warning. */
  skipUnreadable?: boolean;
  onWarning?: (message: string) => void;
  /** Checked before each file and each chunk of one: once aborted, writeImage rejects with BuildStopped. */
  signal?: AbortSignal;
  onProgress?: (p: WriteProgress) => void;
  /** The sink held nothing before (a file just created or truncated): zeros are left unwritten, as holes. */
  outputStartsEmpty?: boolean;
}

/** The build was stopped through its signal. */
export class BuildStopped extends PlatterError {
  readonly exitCode = 130;
}


export async function writeImage(plan: ImagePlan, layout: ImageLayout, sink: BlockSink, options: WriteOptions = {}): Promise<void> {
  const out = new SequentialOutput(sink, options.outputStartsEmpty);
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

  const copier = new FileCopier(out, options, progress);
  for (const file of plan.files) {
    if (file.size > 0) expectAt(file.block, `data of ${showPath(dataPath(file))}`);
    await copier.copy(file);
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

/** Why a file could not be copied as planned. */
class CopyProblem extends Error {
  constructor(
    message: string,
    readonly code: string | undefined,
    /** Its size now, when that is the problem. */
    readonly sizeNow?: number,
  ) {
    super(message);
  }
}

function unreadable(err: unknown, what: string): CopyProblem {
  const e = ioError(err, what);
  return new CopyProblem(e.message, e instanceof DeviceError ? e.code : undefined);
}

function sizeChanged(file: FileData, now: number): CopyProblem {
  return new CopyProblem(`${showPath(dataPath(file))}: its size changed while the image was being written (${file.size} bytes when scanned, ${now} now)`, "EIO", now);
}

/** Read exactly `into.length` bytes at `offset`, failing if the file is shorter now than when it was scanned. */
function readExactly(fd: number, into: Buffer, offset: number, file: FileData): void {
  let done = 0;
  while (done < into.length) {
    let n: number;
    try {
      n = readSync(fd, into, done, into.length - done, offset + done);
    } catch (err) {
      throw unreadable(err, `${showPath(dataPath(file))}: read at offset ${offset + done}`);
    }
    if (n === 0) throw sizeChanged(file, fstatSync(fd).size);
    done += n;
  }
}

/**
 * Copies each file's bytes into the image: in the kernel where the sink
 * can (copy_file_range into an image file, on this thread: a hand-off to a
 * worker per file cost more than the copy), else read synchronously straight
 * into the output buffer while the write of the previous buffer runs on
 * libuv's threads. Thousands of small files do not cost an await each.
 *
 * A file is written at the size it had when scanned: the directories, which
 * come first (so the image can stream), already say so. When it cannot be
 * read now or its size changed, the copy would not be what the image claims:
 * that fails the build, naming the file. With skipUnreadable the build goes
 * on and the copy is cut, or filled up with zeros, to the planned size, with
 * a warning naming the file. That is what xorriso does ("Size of file ... has
 * changed. It will be truncated / padded with 0's", an error it reports and
 * goes past) and what users who asked to go past unreadable files expect;
 * leaving the file out is not possible once its record is written.
 */
class FileCopier {
  constructor(
    private readonly out: SequentialOutput,
    private readonly options: WriteOptions,
    private readonly progress: () => void,
  ) {}

  async copy(file: FileData): Promise<void> {
    this.checkStopped();
    const start = this.out.position;
    let fd: number | undefined;
    try {
      try {
        // Not blocking, not following: a file replaced by a FIFO or a symlink since the scan is refused below, not waited on or followed.
        fd = openSync(dataPath(file), constants.O_RDONLY | constants.O_NONBLOCK | constants.O_NOFOLLOW);
      } catch (err) {
        throw unreadable(err, showPath(dataPath(file)));
      }
      if (!fstatSync(fd).isFile()) throw new CopyProblem(`${showPath(dataPath(file))}: no longer a regular file`, "EINVAL", 0);
      await this.copyData(fd, file);
      const now = fstatSync(fd).size;
      if (now !== file.size) throw sizeChanged(file, now);
    } catch (err) {
      if (!(err instanceof CopyProblem)) throw err;
      if (!this.options.skipUnreadable) {
        throw new DeviceError(`${err.message} (--skip-unreadable writes what can be read of it, cut or zero-filled to ${file.size} bytes)`, err.code);
      }
      const written = this.out.position - start;
      const kept = Math.min(written, err.sizeNow ?? written);
      const holds = kept >= file.size ? `only its first ${file.size} bytes` : kept > 0 ? `its first ${kept} bytes, then zeros` : "zeros in its place";
      this.options.onWarning?.(`${err.message}: the image holds ${holds}`);
      await this.out.zeros(file.size - written);
    } finally {
      if (fd !== undefined) closeSync(fd);
    }
  }

  /** The file's planned bytes into the image. */
  private async copyData(fd: number, file: FileData): Promise<void> {
    if (file.size === 0) return;
    // A boot image is read whole (its first bytes get the boot info table); big files skip their holes.
    const patch = file.bootInfoTable ? bootInfoTable(fd, file) : null;
    const ranges = !patch && file.size >= SPARSE_CHECK_MIN ? fileDataRanges(fd, 0, file.size) : [[0, file.size] as [number, number]];
    let pos = 0;
    for (const [start, length] of ranges) {
      if (start > pos) await this.out.zeros(start - pos);
      const end = start + length;
      let o = start;
      // The kernel copies what it can; the rest (all of it, where the sink cannot) is read and written here.
      while (!patch && o < end) {
        this.checkStopped();
        const n = Math.min(KERNEL_COPY_PIECE, end - o);
        const copied = await this.out.copyFrom(fd, o, n);
        o += copied;
        this.progress();
        if (copied < n) break;
      }
      for (; o < end; o += CHUNK) {
        this.checkStopped();
        const n = Math.min(CHUNK, end - o);
        const into = await this.out.reserve(n);
        readExactly(fd, into, o, file);
        if (patch) overlay(into, o, patch, BOOT_INFO_TABLE_OFFSET);
        this.out.commit(n);
        this.progress();
      }
      pos = end;
    }
    if (pos < file.size) await this.out.zeros(file.size - pos);
  }

  private checkStopped(): void {
    if (this.options.signal?.aborted) throw new BuildStopped("stopped before the image was complete");
  }
}

/** Put `patch`, which belongs at file offset `at`, into the chunk `into` that starts at file offset `chunkStart`. */
function overlay(into: Buffer, chunkStart: number, patch: Buffer, at: number): void {
  const from = Math.max(at, chunkStart);
  const to = Math.min(at + patch.length, chunkStart + into.length);
  if (from < to) patch.copy(into, from - chunkStart, from - at, to - at);
}

/** The boot info table for a BIOS boot image: its own location, length and the checksum of bytes 64..end. */
function bootInfoTable(fd: number, file: FileData): Buffer {
  const sum = new BootInfoChecksum();
  const buf = Buffer.alloc(CHUNK);
  for (let o = BOOT_INFO_CHECKSUM_START; o < file.size; o += CHUNK) {
    const chunk = buf.subarray(0, Math.min(CHUNK, file.size - o));
    readExactly(fd, chunk, o, file);
    sum.update(chunk);
  }
  return encodeBootInfoTable({ pvdBlock: FIRST_DESCRIPTOR_SECTOR, fileBlock: file.block, fileLength: file.size, checksum: sum.digest() });
}
