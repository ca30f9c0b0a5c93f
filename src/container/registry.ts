/**
 * Every container format openImage knows, in the order it tries them: those
 * with a header magic first, those found by a footer (VHD fixed) last.
 * The writers are in writers.ts: a command that only reads (parts, ls) then
 * never loads them, which is start-up time.
 */
import { bzip2Format } from "./bzip2/bzip2-format.js";
import type { ContainerFormat } from "./format.js";
import { gzipFormat } from "./gzip/gzip-format.js";
import { partcloneFormat } from "./partclone/format.js";
import { qcow2Format } from "./qcow2/format.js";
import { vdiFormat } from "./vdi/format.js";
import { vhdFormat } from "./vhd/format.js";
import { vhdxFormat } from "./vhdx/format.js";
import { vmdkFormat } from "./vmdk/format.js";
import { xzFormat } from "./xz/format.js";
import { zstdFormat } from "./zstd/format.js";

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
