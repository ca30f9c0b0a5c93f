/**
 * partclone images (format 0001 and 0002), read in place: the filesystem's
 * used blocks where the bitmap says, zeros elsewhere, every checksum checked.
 */
export { partcloneFormat } from "./format.js";
export { PartcloneSource } from "./partclone-source.js";
