/** VHDX (Hyper-V): fixed, dynamic and differencing disks read, a pending log replayed in memory. */
export { vhdxFormat } from "./format.js";
