/** VHDX as a container layer: found by its file type identifier "vhdxfile" at offset 0. */
import type { ContainerFormat } from "../format.js";
import { hasVhdxSignature } from "./file-identifier.js";

export const vhdxFormat: ContainerFormat = {
  name: "vhdx",
  detect: (head) => hasVhdxSignature(head),
  // Loaded only when an image is this format: a command on a raw disk never parses the reader (start-up time).
  open: async (source, context) => (await import("./source.js")).VhdxSource.open(source, context),
  check: async (source) => (await import("./check.js")).checkVhdx(source),
};
