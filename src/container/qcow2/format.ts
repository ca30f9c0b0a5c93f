/** qcow2 as a container layer: found by its magic, opened as the virtual disk it holds. */
import type { ContainerFormat } from "../format.js";
import { checkQcow2 } from "./check.js";
import { hasQcow2Magic } from "./header.js";
import { Qcow2Source } from "./source.js";

export const qcow2Format: ContainerFormat = {
  name: "qcow2",
  detect: (head) => hasQcow2Magic(head),
  open: (source, context) => Qcow2Source.open(source, context),
  check: (source) => checkQcow2(source),
};
