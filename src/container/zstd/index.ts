/** zstd images: read with random access (seek table or frame index), written in the seekable format. */
export { zstdFormat } from "./format.js";
export { zstdWriter } from "./writer.js";
