/**
 * VMDK as a container layer: a hosted sparse extent (magic "KDMV") or a
 * descriptor file (comment lines, then "version=N", as qemu tells them).
 */
import type { ContainerFormat } from "../format.js";
import { checkVmdk } from "./check.js";
import { looksLikeDescriptor } from "./descriptor.js";
import { hasSparseMagic } from "./sparse-header.js";
import { VmdkSource } from "./source.js";

export const vmdkFormat: ContainerFormat = {
  name: "vmdk",
  detect: (head) => hasSparseMagic(head) || looksLikeDescriptor(head),
  open: (source, context) => VmdkSource.open(source, context),
  check: (source) => checkVmdk(source),
};
