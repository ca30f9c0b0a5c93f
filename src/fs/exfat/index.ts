export { ExfatFileSystem, type ExfatNode, openExfat } from "./exfat.js";
export { decodeBootSector, type BootSector } from "./boot-sector.js";
export { decodeFileEntrySet, entrySetChecksum, type FileEntrySet } from "./dir-entry.js";
