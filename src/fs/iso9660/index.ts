/** ISO 9660 / Joliet / Rock Ridge / El Torito: the reader and the record codecs the writer shares. */
export { openIso9660, Iso9660FileSystem, type IsoNode, type IsoTree, type Iso9660Options } from "./reader.js";
export { readIsoVolume, looksLikeIso9660, volumeIds, type IsoVolume, type IsoVolumeIds } from "./volume.js";
export { platformName, emulationName, type BootCatalog, type BootEntry } from "./el-torito.js";
