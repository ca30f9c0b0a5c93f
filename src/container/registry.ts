/**
 * Every container format openImage knows, in the order it tries them: those
 * with a header magic first, those found by a footer (VHD fixed) last; and
 * every format convert and capture can write.
 */
import type { ContainerFormat, ContainerWriter } from "./format.js";
import { qcow2Format, qcow2Writer } from "./qcow2/index.js";

export const CONTAINER_FORMATS: ContainerFormat[] = [
  qcow2Format,
];

export const CONTAINER_WRITERS: ContainerWriter[] = [
  qcow2Writer,
];
