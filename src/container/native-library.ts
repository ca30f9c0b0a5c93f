/**
 * zstd and xz are decoded and encoded by the system's own libzstd and liblzma
 * (the libraries behind the zstd and xz commands, on every Linux that has a
 * package manager), called through koffi. They run at the tools' own speed
 * (JavaScript and WebAssembly decoders here were 2-15 times slower), need no
 * compiler at install, and koffi's async calls run them on a thread pool, so
 * frames decode and compress on every core while the event loop goes on.
 *
 * Buffers cross as raw addresses (koffi.address), never copied: the caller
 * keeps every Buffer it passed referenced until the call has settled.
 */
import { createRequire } from "node:module";
import { availableParallelism } from "node:os";
import { UnsupportedError } from "../errors.js";

type Koffi = typeof import("koffi");
export type LibraryHandle = ReturnType<Koffi["load"]>;
export type NativeFunction = ReturnType<LibraryHandle["func"]>;

let koffiModule: Koffi | null | undefined;

export function koffi(): Koffi | null {
  if (koffiModule === undefined) {
    try {
      koffiModule = createRequire(import.meta.url)("koffi") as Koffi;
    } catch {
      koffiModule = null;
    }
  }
  return koffiModule;
}

/**
 * The shared library `soname`, or an UnsupportedError naming the package that
 * provides it (`what` says what needed it: "reading .zst images").
 */
export function loadSystemLibrary(soname: string, what: string, debianPackage: string): LibraryHandle {
  const k = koffi();
  if (!k) throw new UnsupportedError(`${what} needs the koffi module, which did not load on this system`);
  try {
    return k.load(soname);
  } catch {
    throw new UnsupportedError(`${what} needs the system library ${soname} (Debian/Ubuntu package ${debianPackage}); it is not installed`);
  }
}

/** The raw address of a Buffer's first byte (plus `offset`), for a pointer argument or a struct field. */
export function addressOf(buf: Buffer, offset = 0): bigint {
  return (koffi() as Koffi).address(buf) + BigInt(offset);
}

/**
 * Run `fn(...args)` on koffi's thread pool; resolves with its result. The
 * arguments carry raw addresses, so the Buffers behind them are passed as
 * `keep`, which the pending callback holds until the call has returned.
 */
export function callAsync<T>(fn: NativeFunction, args: unknown[], keep: readonly Buffer[]): Promise<T> {
  return new Promise((resolve, reject) => {
    fn.async(...args, (err: unknown, result: T) => {
      void keep; // captured here, so the Buffers live until the call has returned
      if (err) reject(err);
      else resolve(result);
    });
  });
}

/** size_t results come back as a number, or a bigint past 2^53 (an error code); this is the number, or -1. */
export function sizeResult(value: number | bigint): number {
  return typeof value === "bigint" ? (value <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(value) : -1) : value;
}

/** Native calls at once, by default: one per core. */
export function defaultThreads(): number {
  return Math.max(1, availableParallelism());
}
