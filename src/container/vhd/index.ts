/** VHD (Virtual PC, Hyper-V): fixed, dynamic and differencing disks read; fixed and dynamic written. */
export { vhdFormat } from "./format.js";
export { vhdWriter, type VhdWriterOptions } from "./writer.js";
