/**
 * Everything platter reads goes through a BlockSource: a file, a block
 * device, a partition (a slice of another source), bytes in memory, or in
 * tests a source that fails on chosen sectors. Commands never care which.
 */
export interface BlockSource {
  /** Size in bytes. */
  readonly size: number;
  /** Logical sector size: 512 or 4096 (the unit of error handling and of partition tables). */
  readonly sectorSize: number;
  /** What this is, for messages: a path, "partition 2 of disk.img"... */
  readonly name: string;
  /**
   * Read exactly `length` bytes at `offset`. Reading outside [0, size) is a
   * CorruptImageError (a structure pointed past the end); an I/O failure is
   * a DeviceError whose `code` is the errno name (EIO for a bad sector).
   * When `into` is given the bytes land in it (from index 0) and it is returned.
   */
  read(offset: number, length: number, into?: Buffer): Promise<Buffer>;
  /**
   * Optional: fill `buffers`, one after another, from `offset`, as read()
   * would fill them one by one, with one vectored read where the source can:
   * a virtual disk reads host clusters that follow on in its file into the
   * scattered places of the guest buffer they belong to.
   */
  readv?(offset: number, buffers: Buffer[]): Promise<void>;
  /**
   * Optional: the ranges of [offset, offset+length) that may hold data, in
   * order. Ranges outside them are known to read as zeros (the holes of a
   * sparse file). Sources that cannot tell omit it.
   */
  dataRanges?(offset: number, length: number): Promise<Array<[number, number]>>;
  /**
   * Optional: copy [offset, offset+length) straight into an open file
   * descriptor at `fdOffset`, inside the kernel. Resolves false, having
   * copied nothing, when it cannot; the caller then reads and writes. A
   * failure after some bytes went across is a PartialCopyError saying how many.
   */
  copyTo?(offset: number, length: number, fd: number, fdOffset: number): Promise<boolean>;
  /**
   * Optional: false where a read far from the last one decodes from the
   * start (a compressed stream with no access points). Probes for what may
   * sit at the end (a VHD footer, a backup GPT header with no primary) skip
   * such a source: on a 10 GB stream each would decode all of it.
   */
  readonly seekable?: boolean;
  close(): Promise<void>;
}

/** The writing mirror of BlockSource. */
export interface BlockSink {
  readonly name: string;
  /** True if write() must be called with increasing, contiguous offsets (a pipe). */
  readonly sequential: boolean;
  /**
   * True when a sequential sink takes a write while the one before is still
   * under way (each accepted, in order, when it is called).
   */
  readonly overlapsWrites?: boolean;
  write(offset: number, data: Buffer): Promise<void>;
  /** True when write() is done with `data` once it resolves, so the caller may fill that buffer again. */
  readonly releasesWrites?: boolean;
  /**
   * True when zeros given to write() take room that writeZeros() would leave
   * as a hole (a sparse file): give it the data, and zero runs apart.
   */
  readonly keepsHoles?: boolean;
  /**
   * Make [offset, offset+length) read as zeros, as cheaply as the sink can:
   * a hole in a sparse file, written zeros elsewhere.
   */
  writeZeros(offset: number, length: number): Promise<void>;
  /**
   * Optional: write [sourceOffset, sourceOffset+length) of `source` at
   * `offset` inside the kernel (BlockSource.copyTo), the bytes never passing
   * through JavaScript. Resolves false, having written nothing, when it
   * cannot; the caller then reads and writes. Rejects as source.copyTo does.
   */
  copyFrom?(source: BlockSource, sourceOffset: number, length: number, offset: number): Promise<boolean>;
  /**
   * Optional: copy `length` bytes of the open file `fd` from `fdOffset` to
   * `offset` of the sink, inside the kernel. Resolves to the bytes copied,
   * which may be short (the end of that file); 0 when it cannot copy at all
   * (the caller then reads and writes, which also reports any I/O error).
   */
  copyFromFile?(fd: number, fdOffset: number, length: number, offset: number): Promise<number>;
  /** Set the final size (a regular file is truncated or extended; others ignore it). */
  setSize(size: number): Promise<void>;
  flush(): Promise<void>;
  close(): Promise<void>;
}

/** `source.dataRanges`, or the whole range for a source that cannot tell its holes. */
export async function dataRangesOf(source: BlockSource, offset: number, length: number): Promise<Array<[number, number]>> {
  return source.dataRanges ? source.dataRanges(offset, length) : [[offset, length]];
}

/** Fill `buffers`, one after another from `offset`, with one read each: readv's meaning, without a vectored read. */
export async function readEach(source: BlockSource, offset: number, buffers: Buffer[]): Promise<void> {
  let at = offset;
  await Promise.all(buffers.map((buf) => source.read((at += buf.length) - buf.length, buf.length, buf)));
}

/** `source.readv`, or one read per buffer for a source without it. */
export function readvOf(source: BlockSource, offset: number, buffers: Buffer[]): Promise<void> {
  return source.readv ? source.readv(offset, buffers) : readEach(source, offset, buffers);
}

/** `source` read as it is, with another close(): a view that closes what it was cut from, an image that closes its whole stack. */
export function withClose(source: BlockSource, close: () => Promise<void>): BlockSource {
  return {
    name: source.name,
    size: source.size,
    sectorSize: source.sectorSize,
    read: (offset, length, into) => source.read(offset, length, into),
    readv: source.readv ? (offset, buffers) => readvOf(source, offset, buffers) : undefined,
    dataRanges: source.dataRanges ? (offset, length) => (source.dataRanges as NonNullable<BlockSource["dataRanges"]>)(offset, length) : undefined,
    close,
  };
}
