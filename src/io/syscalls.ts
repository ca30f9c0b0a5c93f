/**
 * The few Linux system calls Node does not expose: lseek with SEEK_DATA /
 * SEEK_HOLE (skip the holes of sparse files), fallocate punch-hole, and the
 * block-device ioctls that give a device's exact size and logical sector size
 * or discard or zero a range of it, cachestat (how much of a file the page
 * cache holds), posix_fadvise, and copy_file_range.
 *
 * They go through koffi (an FFI with prebuilt binaries in the npm registry).
 * Every function degrades: if koffi cannot load, callers get `undefined` and
 * fall back to something slower but correct.
 */
import { addressOf, loadKoffi } from "../util/koffi.js";
import { constants } from "node:os";

const SEEK_DATA = 3;
const SEEK_HOLE = 4;
const ENXIO = 6;
const BLKGETSIZE64 = 0x80081272;
const BLKSSZGET = 0x1268;
const BLKDISCARD = 0x1277;
const BLKZEROOUT = 0x127f;
const FALLOC_FL_KEEP_SIZE = 0x01;
const FALLOC_FL_PUNCH_HOLE = 0x02;
/**
 * cachestat(2), Linux 6.5. System calls added since 5.1 share one number on
 * every architecture Node runs on; MIPS numbers from a base (451 is then no
 * call at all, ENOSYS), and only Alpha differs, where Node does not run.
 */
const SYS_CACHESTAT = 451;
const SC_PAGESIZE = 30;
const POSIX_FADV_DONTNEED = 4;

interface Libc {
  lseek(fd: number, offset: bigint | number, whence: number): bigint | number;
  ioctlU64(fd: number, request: number, out: BigUint64Array): number;
  ioctlInt(fd: number, request: number, out: Int32Array): number;
  ioctlRange: { async(fd: number, request: number, range: BigUint64Array, done: (err: unknown, result: number) => void): void };
  fallocate(fd: number, mode: number, offset: bigint | number, len: bigint | number): number;
  copyFileRange: {
    (fdIn: number, offIn: BigInt64Array, fdOut: number, offOut: BigInt64Array, len: number, flags: number): bigint | number;
    async(
      fdIn: number,
      offIn: BigInt64Array,
      fdOut: number,
      offOut: BigInt64Array,
      len: number,
      flags: number,
      done: (err: unknown, copied: bigint | number) => void,
    ): void;
  };
  cachestat(fd: number, range: BigUint64Array, stat: BigUint64Array): number;
  fadvise(fd: number, offset: bigint | number, len: bigint | number, advice: number): number;
  madvise(addr: Buffer, len: number, advice: number): number;
  pageSize: number;
  errno(): number;
}

let libc: Libc | null | undefined;

function load(): Libc | null {
  if (libc !== undefined) return libc;
  libc = null;
  // PLATTER_TEST_NO_FFI: tests run the fallbacks of every call here, as where koffi cannot load.
  if (process.platform !== "linux" || process.env.PLATTER_TEST_NO_FFI) return libc;
  try {
    const koffi = loadKoffi();
    if (!koffi) return libc;
    const lib = koffi.load("libc.so.6");
    const lseek = lib.func("int64_t lseek(int fd, int64_t offset, int whence)");
    const ioctlU64 = lib.func("int ioctl(int fd, unsigned long request, _Out_ uint64_t *out)");
    const ioctlInt = lib.func("int ioctl(int fd, unsigned long request, _Out_ int *out)");
    const ioctlRange = lib.func("int ioctl(int fd, unsigned long request, const uint64_t *range)");
    const fallocate = lib.func("int fallocate(int fd, int mode, int64_t offset, int64_t len)");
    const copyFileRange = lib.func(
      "int64_t copy_file_range(int fd_in, int64_t *off_in, int fd_out, int64_t *off_out, size_t len, unsigned int flags)",
    );
    const fadvise = lib.func("int posix_fadvise(int fd, int64_t offset, int64_t len, int advice)");
    const madvise = lib.func("int madvise(void *addr, size_t len, int advice)");
    const syscall = lib.func("long syscall(long number, ...)");
    const sysconf = lib.func("long sysconf(int name)");
    libc = {
      lseek,
      ioctlU64,
      ioctlInt,
      ioctlRange,
      fallocate,
      copyFileRange,
      fadvise,
      madvise,
      cachestat: (fd, range, stat) =>
        Number(syscall(SYS_CACHESTAT, "int", fd, "uint64_t *", range, "uint64_t *", stat, "unsigned int", 0)),
      pageSize: Number(sysconf(SC_PAGESIZE)),
      // The errno of the last call, from its worker thread too inside an async call's callback.
      errno: () => koffi.errno(),
    };
  } catch {
    libc = null;
  }
  return libc;
}

/**
 * Next data offset at or after `offset` (SEEK_DATA). Returns `null` when only
 * a hole remains up to the end, `undefined` when the platform cannot tell
 * (then treat everything as data).
 */
export function seekData(fd: number, offset: number): number | null | undefined {
  return seekWhence(fd, offset, SEEK_DATA);
}

/** Next hole at or after `offset` (SEEK_HOLE); the file end counts as a hole. */
export function seekHole(fd: number, offset: number): number | null | undefined {
  return seekWhence(fd, offset, SEEK_HOLE);
}

function seekWhence(fd: number, offset: number, whence: number): number | null | undefined {
  const c = load();
  if (!c) return undefined;
  const r = Number(c.lseek(fd, BigInt(offset), whence));
  if (r >= 0) return r;
  return c.errno() === ENXIO ? null : undefined;
}

/** Exact byte size of a block device, or undefined. */
export function blockDeviceSize(fd: number): number | undefined {
  const c = load();
  if (!c) return undefined;
  const out = new BigUint64Array(1);
  return c.ioctlU64(fd, BLKGETSIZE64, out) === 0 ? Number(out[0]) : undefined;
}

/** Logical sector size of a block device, or undefined. */
export function blockDeviceSectorSize(fd: number): number | undefined {
  const c = load();
  if (!c) return undefined;
  const out = new Int32Array(1);
  return c.ioctlInt(fd, BLKSSZGET, out) === 0 ? out[0] : undefined;
}

/**
 * BLKDISCARD [offset, offset+length) of an open block device (TRIM on an
 * SSD, a punched hole under a loop device), on a worker thread: it can take
 * a while on a large device. False when the device or platform cannot.
 * Whether discarded sectors then read as zeros is the device's business.
 */
export function discardRange(fd: number, offset: number, length: number): Promise<boolean> {
  return rangeIoctl(fd, BLKDISCARD, offset, length);
}

/**
 * BLKZEROOUT: make [offset, offset+length) of a block device read as zeros,
 * the device's own way where it has one (WRITE ZEROES; a loop device
 * allocates zeros in its backing file), else the kernel writes zero pages
 * without a copy from user memory. Both must be multiples of 512. False
 * when it cannot; the caller writes zeros itself.
 */
export function zeroOutRange(fd: number, offset: number, length: number): Promise<boolean> {
  return rangeIoctl(fd, BLKZEROOUT, offset, length);
}

/** A block-device ioctl taking a {start, length} pair, on a worker thread: it can take a while on a large range. */
function rangeIoctl(fd: number, request: number, offset: number, length: number): Promise<boolean> {
  const c = load();
  if (!c || length <= 0) return Promise.resolve(false);
  return new Promise((resolve) => {
    c.ioctlRange.async(fd, request, BigUint64Array.of(BigInt(offset), BigInt(length)), (err, result) => resolve(!err && result === 0));
  });
}

/** Deallocate a byte range of a file, keeping its size. False when unsupported. */
export function punchHole(fd: number, offset: number, length: number): boolean {
  const c = load();
  if (!c || length <= 0) return false;
  return c.fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, BigInt(offset), BigInt(length)) === 0;
}

/** The errno name of `n`, for the errors of calls made on a worker thread (looked up only on a failure). */
function errnoName(n: number): string | undefined {
  return Object.entries(constants.errno).find(([, value]) => value === n)?.[0];
}

/**
 * Copy `length` bytes from one file to another inside the kernel
 * (copy_file_range: no trip through user memory, a reflink where the
 * filesystem can). Runs on a worker thread. Resolves to the bytes copied,
 * which may be short (0 at the end of the source); undefined when the
 * platform has no such call. A failure rejects with an Error whose `code` is
 * the errno name: EXDEV, EINVAL, EOPNOTSUPP when these two files cannot be
 * copied between, EIO for a read or write that failed.
 */
export function copyFileRange(fdIn: number, offsetIn: number, fdOut: number, offsetOut: number, length: number): Promise<number | undefined> {
  const c = load();
  if (!c || length <= 0) return Promise.resolve(undefined);
  const offIn = BigInt64Array.of(BigInt(offsetIn));
  const offOut = BigInt64Array.of(BigInt(offsetOut));
  return new Promise((resolve, reject) => {
    c.copyFileRange.async(fdIn, offIn, fdOut, offOut, length, 0, (err, copied) => {
      const n = Number(copied);
      if (err) reject(err);
      else if (n >= 0) resolve(n);
      else {
        // koffi hands the worker thread's errno to the callback.
        const code = errnoName(c.errno()) ?? "EIO";
        reject(Object.assign(new Error(`copy_file_range: ${code}`), { code }));
      }
    });
  });
}

/** Drop [offset, offset+length) of a file from the page cache (clean pages only: what reading brought in). */
export function dropCached(fd: number, offset: number, length: number): void {
  if (length > 0) load()?.fadvise(fd, BigInt(offset), BigInt(length), POSIX_FADV_DONTNEED);
}

/**
 * copyFileRange on the calling thread: for callers that copy many small
 * files one after another, where a trip to a worker thread and back costs
 * more than the copy. Resolves to the bytes copied (0 at the end of the
 * source); undefined on any failure or without the call, where the caller
 * reads and writes instead (which reports a real I/O error).
 */
export function copyFileRangeSync(fdIn: number, offsetIn: number, fdOut: number, offsetOut: number, length: number): number | undefined {
  const c = load();
  if (!c || length <= 0) return undefined;
  const n = Number(c.copyFileRange(fdIn, BigInt64Array.of(BigInt(offsetIn)), fdOut, BigInt64Array.of(BigInt(offsetOut)), length, 0));
  return n < 0 ? undefined : n;
}

/**
 * Bytes of [offset, offset+length) of an open file that sit in the page
 * cache, or undefined where the kernel cannot say (before Linux 6.5).
 */
export function cachedBytes(fd: number, offset: number, length: number): number | undefined {
  const c = load();
  if (!c || length <= 0) return undefined;
  const stat = new BigUint64Array(5); // nr_cache, nr_dirty, nr_writeback, nr_evicted, nr_recently_evicted
  if (c.cachestat(fd, BigUint64Array.of(BigInt(offset), BigInt(length)), stat) !== 0) return undefined;
  return Number(stat[0]) * c.pageSize;
}

/** The size of a transparent huge page on x86-64 and arm64 with 4 KiB pages. */
export const HUGE_PAGE = 2 << 20;
const MADV_HUGEPAGE = 14;

/** Where `buf`'s first byte is in memory (a number: user addresses fit in 53 bits), or undefined without the FFI. */
export function memoryAddress(buf: Buffer): number | undefined {
  return load() ? Number(addressOf(buf)) : undefined;
}

/** Bytes from `address` to the next 2 MiB boundary (0 on one). */
export function toHugePageBoundary(address: number): number {
  return (HUGE_PAGE - (address % HUGE_PAGE)) % HUGE_PAGE;
}

/**
 * Ask for transparent huge pages under the 2 MiB-aligned part of `buf`
 * (MADV_HUGEPAGE: the kernel's default THP mode is "madvise"), before it is
 * first touched. The first touch of fresh memory is a page fault per 4 KiB:
 * 3.5-5 ms per MiB on the development VM (its faults go through the
 * hypervisor), against 0.1-1.3 ms per MiB with huge pages; 256 MiB read out
 * of a .zst went 0.66 -> 0.55 s, a 1 GiB restore 1.15 -> 0.91 s. For large
 * buffers that live long (I/O pools); a no-op where it cannot be done.
 */
export function adviseHugePages(buf: Buffer): void {
  if (buf.length < HUGE_PAGE) return;
  const address = memoryAddress(buf);
  if (address === undefined) return;
  const skip = toHugePageBoundary(address);
  const length = Math.floor((buf.length - skip) / HUGE_PAGE) * HUGE_PAGE;
  if (length > 0) load()?.madvise(buf.subarray(skip, skip + length), length, MADV_HUGEPAGE);
}
