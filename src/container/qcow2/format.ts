/** qcow2 as a container layer: found by its magic, opened as the virtual disk it holds. */
import type { ContainerFormat } from "../format.js";
import { hasQcow2Magic } from "./header.js";

export const qcow2Format: ContainerFormat = {
  name: "qcow2",
  detect: (head) => hasQcow2Magic(head),
  // Loaded only when an image is this format: a command on a raw disk never parses the reader (start-up time).
  open: async (source, context) => (await import("./source.js")).Qcow2Source.open(source, context),
  check: async (source) => (await import("./check.js")).checkQcow2(source),
};
