/**
 * zstd for qcow2 clusters: zstd-napi's binding (libzstd), whose one-shot
 * calls take an output buffer: a cluster can never decode past it.
 */
import { createRequire } from "node:module";

const require = createRequire(import.meta.url);

/** Where the binding lives, for worker threads that load it themselves. */
export const ZSTD_BINDING_PATH: string = require.resolve("zstd-napi/binding.js");

export const zstd: typeof import("zstd-napi/binding.js") = require(ZSTD_BINDING_PATH);
