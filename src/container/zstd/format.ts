/**
 * Reading .zst images: found by the frame magic (or a leading skippable
 * frame, as pzstd writes), read with random access through the frame index.
 */
import type { ContainerFormat } from "../format.js";
import { isSkippableMagic, ZSTD_MAGIC } from "./frame-header.js";

export const zstdFormat: ContainerFormat = {
  name: "zstd",

  detect(head: Buffer): boolean {
    if (head.length < 4) return false;
    const magic = head.readUInt32LE(0);
    return magic === ZSTD_MAGIC || isSkippableMagic(magic);
  },

  // Loaded only when an image is this format: a command on a raw disk never parses the reader (start-up time).
  open: async (below, context) => (await import("./open.js")).openZstd(below, context),
};
