/**
 * Reading .xz images: found by the stream header magic, read with random
 * access per block through the index at the end of each stream. A file of
 * one large block (what plain `xz` writes) can only be read from its start.
 */
import type { ContainerFormat } from "../format.js";
import { XZ_MAGIC } from "./stream-header.js";

export const xzFormat: ContainerFormat = {
  name: "xz",

  detect(head: Buffer): boolean {
    return head.length >= XZ_MAGIC.length && head.subarray(0, XZ_MAGIC.length).equals(XZ_MAGIC);
  },

  // Loaded only when an image is this format: a command on a raw disk never parses the reader (start-up time).
  open: async (below) => (await import("./open.js")).openXz(below),
};
