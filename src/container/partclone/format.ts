/**
 * partclone's image format (also Clonezilla's "-ptcl-img" files, once their
 * gzip or zstd layer is peeled): detected by the "partclone-image" magic.
 */
import type { ContainerFormat } from "../format.js";
import { hasPartcloneMagic } from "./header.js";
import { PartcloneSource } from "./partclone-source.js";

export const partcloneFormat: ContainerFormat = {
  name: "partclone",
  detect: (head) => hasPartcloneMagic(head),
  open: (source, context) => PartcloneSource.open(source, context.onWarning),
};
