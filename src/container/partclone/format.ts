/**
 * partclone's image format (also Clonezilla's "-ptcl-img" files, once their
 * gzip or zstd layer is peeled): detected by the "partclone-image" magic.
 */
import type { ContainerFormat } from "../format.js";
import { hasPartcloneMagic } from "./header.js";

export const partcloneFormat: ContainerFormat = {
  name: "partclone",
  detect: (head) => hasPartcloneMagic(head),
  // Loaded only when an image is this format: a command on a raw disk never parses the reader (start-up time).
  open: async (source, context) => (await import("./partclone-source.js")).PartcloneSource.open(source, context.onWarning),
};
