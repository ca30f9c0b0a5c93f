/** VDI as a container layer: found by the signature 0xbeda107f after its text banner. */
import type { ContainerFormat } from "../format.js";
import { hasVdiSignature } from "./header.js";

export const vdiFormat: ContainerFormat = {
  name: "vdi",
  detect: (head) => hasVdiSignature(head),
  // Loaded only when an image is this format: a command on a raw disk never parses the reader (start-up time).
  open: async (source) => (await import("./source.js")).VdiSource.open(source),
};
