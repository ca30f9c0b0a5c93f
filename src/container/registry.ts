/**
 * Every container format openImage knows, in the order it tries them: those
 * with a header magic first, those found by a footer (VHD fixed) last.
 */
import type { ContainerFormat } from "./format.js";

export const CONTAINER_FORMATS: ContainerFormat[] = [];
