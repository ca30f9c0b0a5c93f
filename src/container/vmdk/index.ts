/** VMDK (VMware): monolithicSparse, streamOptimized, monolithicFlat, twoGbMaxExtent* and VMFS disks read, with parents. */
export { vmdkFormat } from "./format.js";
