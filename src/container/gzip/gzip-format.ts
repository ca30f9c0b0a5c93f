/** gzip as a container layer: detected by its magic (1F 8B 08); opened by open.ts. */
import type { ContainerFormat } from "../format.js";
import { isGzipMagic } from "./member-header.js";

export const gzipFormat: ContainerFormat = {
  name: "gzip",
  detect: (head) => isGzipMagic(head),
  // Loaded only when an image is this format: a command on a raw disk never parses the reader (start-up time).
  open: async (source, context) => (await import("./open.js")).openGzip(source, context),
};
