/**
 * VMDK as a container layer: a hosted sparse extent (magic "KDMV") or a
 * descriptor file (comment lines, then "version=N", as qemu tells them).
 */
import type { ContainerFormat } from "../format.js";
import { looksLikeDescriptor } from "./descriptor.js";
import { hasSparseMagic } from "./sparse-header.js";

export const vmdkFormat: ContainerFormat = {
  name: "vmdk",
  detect: (head) => hasSparseMagic(head) || looksLikeDescriptor(head),
  // Loaded only when an image is this format: a command on a raw disk never parses the reader (start-up time).
  open: async (source, context) => (await import("./source.js")).VmdkSource.open(source, context),
  check: async (source) => (await import("./check.js")).checkVmdk(source),
};
