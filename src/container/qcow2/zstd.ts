/**
 * zstd for qcow2 clusters: zstd-napi's binding (libzstd), whose one-shot
 * calls take an output buffer: a cluster can never decode past it.
 * Loaded on first use: a native module costs start-up to every command,
 * and only qcow2 images with zstd clusters need it.
 */
import { createRequire } from "node:module";

type ZstdBinding = typeof import("zstd-napi/binding.js");

const requireNative = createRequire(import.meta.url);

/** Where the binding lives, for worker threads that load it themselves. */
export function zstdBindingPath(): string {
  return requireNative.resolve("zstd-napi/binding.js");
}

let binding: ZstdBinding | undefined;

export function zstd(): ZstdBinding {
  binding ??= requireNative(zstdBindingPath()) as ZstdBinding;
  return binding;
}
