export { openSquashfs, SquashfsFileSystem, type SquashfsNode } from "./squashfs.js";
export { decodeSuperblock, type Superblock } from "./superblock.js";
