/** VDI (VirtualBox): static and dynamic images read. */
export { vdiFormat } from "./format.js";
