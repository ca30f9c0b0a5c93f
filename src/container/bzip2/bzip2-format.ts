/**
 * bzip2 as a container layer: detected by "BZh1".."BZh9" followed by a block
 * magic or the end-of-stream magic; opened by open.ts.
 */
import type { ContainerFormat } from "../format.js";
import { decodeStreamHeader, HEADER_BYTES } from "./stream-header.js";

const FIRST_MARKERS = ["314159265359", "177245385090"].map((hex) => Buffer.from(hex, "hex"));

export const bzip2Format: ContainerFormat = {
  name: "bzip2",
  detect: (head) => decodeStreamHeader(head) !== undefined && FIRST_MARKERS.some((m) => head.subarray(HEADER_BYTES, HEADER_BYTES + 6).equals(m)),
  // Loaded only when an image is this format: a command on a raw disk never parses the reader (start-up time).
  open: async (source, context) => (await import("./open.js")).openBzip2(source, context),
};
