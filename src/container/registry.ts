/**
 * Every container format openImage knows, in the order it tries them: those
 * with a header magic first, those found by a footer (VHD fixed) last; and
 * every format convert and capture can write.
 */
import { bzip2Format, bzip2Writer } from "./bzip2/index.js";
import type { ContainerFormat, ContainerWriter } from "./format.js";
import { gzipFormat, gzipWriter } from "./gzip/index.js";
import { partcloneFormat } from "./partclone/index.js";
import { qcow2Format, qcow2Writer } from "./qcow2/index.js";
import { vdiFormat } from "./vdi/index.js";
import { vhdFormat, vhdWriter } from "./vhd/index.js";
import { vhdxFormat, vhdxWriter } from "./vhdx/index.js";
import { vmdkFormat, vmdkWriter } from "./vmdk/index.js";
import { xzFormat, xzWriter } from "./xz/index.js";
import { zstdFormat, zstdWriter } from "./zstd/index.js";

export const CONTAINER_FORMATS: ContainerFormat[] = [
  qcow2Format,
  zstdFormat,
  xzFormat,
  gzipFormat,
  bzip2Format,
  partcloneFormat,
  vdiFormat,
  vhdxFormat,
  vmdkFormat,
  // Last: a fixed VHD is found by its footer, after every format found by its head.
  vhdFormat,
];

/** Every container platter writes (convert, capture into a compressed or virtual disk). */
export const CONTAINER_WRITERS: ContainerWriter[] = [
  qcow2Writer,
  zstdWriter,
  xzWriter,
  gzipWriter,
  bzip2Writer,
  vhdWriter,
  vhdxWriter,
  vmdkWriter,
];
