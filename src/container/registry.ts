/**
 * Every container format openImage knows, in the order it tries them: those
 * with a header magic first, those found by a footer (VHD fixed) last; and
 * every format convert and capture can write.
 */
import type { ContainerFormat, ContainerWriter } from "./format.js";
import { vdiFormat } from "./vdi/index.js";
import { vhdFormat, vhdWriter } from "./vhd/index.js";
import { vhdxFormat } from "./vhdx/index.js";
import { vmdkFormat } from "./vmdk/index.js";

export const CONTAINER_FORMATS: ContainerFormat[] = [
  vdiFormat,
  vhdxFormat,
  vmdkFormat,
  // Last: a fixed VHD is found by its footer, after every format found by its head.
  vhdFormat,
];

export const CONTAINER_WRITERS: ContainerWriter[] = [
  vhdWriter,
];
