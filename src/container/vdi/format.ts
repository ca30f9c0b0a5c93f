/** VDI as a container layer: found by the signature 0xbeda107f after its text banner. */
import type { ContainerFormat } from "../format.js";
import { hasVdiSignature } from "./header.js";
import { VdiSource } from "./source.js";

export const vdiFormat: ContainerFormat = {
  name: "vdi",
  detect: (head) => hasVdiSignature(head),
  open: (source) => VdiSource.open(source),
};
