export { gzipFormat } from "./gzip-format.js";
export { gzipWriter } from "./gzip-writer.js";
export { GzipSource } from "./gzip-source.js";
