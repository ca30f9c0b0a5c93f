/**
 * The koffi FFI, loaded once for the whole process. Its package entry
 * resolves four modules and reads node's own ELF header (glibc or musl?)
 * before it loads the native binary: 13 ms of every command that makes a
 * system call Node lacks or calls libzstd. The binary for this platform is
 * loaded straight from its package instead (3 ms); where that fails (musl,
 * a layout koffi changed), through the package entry as before.
 */
import { createRequire } from "node:module";

export type Koffi = typeof import("koffi");

let loaded: Koffi | null | undefined;

/** koffi, or null where it cannot load (the callers fall back or say what is missing). */
export function loadKoffi(): Koffi | null {
  if (loaded !== undefined) return loaded;
  const require = createRequire(import.meta.url);
  const { platform, arch } = process;
  try {
    const native = require(`@koromix/koffi-${platform}-${arch}/${platform}_${arch}/koffi.node`) as Koffi;
    if (typeof native.load !== "function" || typeof native.version !== "string") throw new Error("not koffi");
    loaded = native;
  } catch {
    try {
      loaded = require("koffi") as Koffi;
    } catch {
      loaded = null;
    }
  }
  return loaded;
}

/** The raw address of a Buffer's first byte (plus `offset`), for a pointer argument or a struct field; koffi must have loaded. */
export function addressOf(buf: Buffer, offset = 0): bigint {
  return (loadKoffi() as Koffi).address(buf) + BigInt(offset);
}
