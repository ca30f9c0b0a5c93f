/**
 * qcow2, qemu's virtual disk format: read (versions 2 and 3, compressed
 * clusters, extended L2 entries, backing chains, external data files),
 * written (convert, capture) and checked as `qemu-img check` does.
 */
export { qcow2Format } from "./format.js";
export { Qcow2Source } from "./source.js";
export { checkQcow2, type Qcow2CheckReport } from "./check.js";
export type { Problem as Qcow2Problem } from "./references.js";
export { qcow2Writer, Qcow2Sink, type Qcow2WriterOptions } from "./writer.js";
