/** VHDX (Hyper-V): fixed, dynamic and differencing disks read, a pending log replayed in memory; dynamic disks written. */
export { vhdxFormat } from "./format.js";
export { vhdxWriter, type VhdxWriterOptions } from "./writer.js";
