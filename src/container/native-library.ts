/**
 * zstd, xz and bzip2 are decoded and encoded by the system's own libzstd,
 * liblzma and libbz2 (the libraries behind the zstd, xz and bzip2 commands,
 * on every Linux that has a package manager), called through koffi; gzip
 * indexing calls libz (gzip/libz.ts). They run at the tools' own speed
 * (JavaScript and WebAssembly decoders here were 2-15 times slower), need no
 * compiler at install, and koffi's async calls run them on a thread pool, so
 * frames decode and compress on every core while the event loop goes on.
 *
 * Buffers cross as raw addresses (koffi.address), never copied: the caller
 * keeps every Buffer it passed referenced until the call has settled.
 */
import { availableParallelism } from "node:os";
import { UnsupportedError } from "../errors.js";
import { Limiter } from "../util/limiter.js";
import { type Koffi, loadKoffi } from "../util/koffi.js";

export type LibraryHandle = ReturnType<Koffi["load"]>;
export type NativeFunction = ReturnType<LibraryHandle["func"]>;

/** A system library and what to say when it is missing. */
export interface SystemLibrary {
  /** File names to try in turn: "libbz2.so.1.0", "libbz2.so.1". */
  sonames: readonly string[];
  /** What needs it, for the message: "reading and writing .zst images". */
  what: string;
  /** The Debian/Ubuntu package that provides it. */
  debianPackage: string;
  /**
   * Load it with RTLD_DEEPBIND, so its calls to its own functions stay inside
   * it: node exports its bundled zlib (other struct layouts) under zlib's
   * names, and without this libz.so.1's inflateInit2_ called node's
   * inflateReset2, which wrote past libz's state and crashed the process.
   */
  deep?: boolean;
}

/** The library, or an UnsupportedError naming the package that provides it. */
export function loadSystemLibrary(library: SystemLibrary): LibraryHandle {
  const k = loadKoffi();
  if (!k) throw new UnsupportedError(`${library.what} needs the koffi module, which did not load on this system`);
  for (const soname of library.sonames) {
    try {
      return k.load(soname, { deep: library.deep ?? false });
    } catch {
      // the next name
    }
  }
  throw new UnsupportedError(
    `${library.what} needs the system library ${library.sonames[0]} (Debian/Ubuntu package ${library.debianPackage}); it is not installed`,
  );
}

/**
 * `bind(library)` (its functions), loaded on first use and kept; while the
 * library is missing each call throws loadSystemLibrary's UnsupportedError.
 */
export function lazyLibrary<T>(library: SystemLibrary, bind: (handle: LibraryHandle) => T): () => T {
  let bound: T | undefined;
  return () => (bound ??= bind(loadSystemLibrary(library)));
}

/**
 * Native calls handed to koffi at once; the others wait here in call order.
 * koffi throws once 256 calls are running or queued (max_async_calls), and
 * keeps memory for 8 (resident_async_pools), beyond which each call
 * allocates its own; libuv's pool runs 4 at a time anyway.
 */
const nativeCalls = new Limiter(8);

/**
 * Run `fn(...args)` on koffi's thread pool; resolves with its result. The
 * arguments carry raw addresses, so the Buffers behind them are passed as
 * `keep`, which the pending callback holds until the call has returned.
 */
export function callAsync<T>(fn: NativeFunction, args: unknown[], keep: readonly Buffer[]): Promise<T> {
  return nativeCalls.run(
    () =>
      new Promise<T>((resolve, reject) => {
        fn.async(...args, (err: unknown, result: T) => {
          void keep; // captured here, so the Buffers live until the call has returned
          if (err) reject(err);
          else resolve(result);
        });
      }),
  );
}

/** size_t results come back as a number, or a bigint past 2^53 (an error code); this is the number, or -1. */
export function sizeResult(value: number | bigint): number {
  return typeof value === "bigint" ? (value <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(value) : -1) : value;
}

/** Native calls at once, by default: one per core. */
export function defaultThreads(): number {
  return Math.max(1, availableParallelism());
}
