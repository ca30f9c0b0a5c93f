/** VHDX as a container layer: found by its file type identifier "vhdxfile" at offset 0. */
import type { ContainerFormat } from "../format.js";
import { checkVhdx } from "./check.js";
import { hasVhdxSignature } from "./file-identifier.js";
import { VhdxSource } from "./source.js";

export const vhdxFormat: ContainerFormat = {
  name: "vhdx",
  detect: (head) => hasVhdxSignature(head),
  open: (source, context) => VhdxSource.open(source, context),
  check: (source) => checkVhdx(source),
};
