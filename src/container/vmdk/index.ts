/** VMDK (VMware): monolithicSparse, streamOptimized, monolithicFlat, twoGbMaxExtent* and VMFS disks read, with parents; streamOptimized written. */
export { vmdkFormat } from "./format.js";
export { vmdkWriter } from "./stream-writer.js";
