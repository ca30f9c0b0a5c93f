/** xz images: read with random access per block through their index, written as many blocks. */
export { xzFormat } from "./format.js";
export { xzWriter } from "./writer.js";
