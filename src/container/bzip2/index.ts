export { bzip2Format } from "./bzip2-format.js";
export { bzip2Writer } from "./bzip2-writer.js";
export { Bzip2Source } from "./bzip2-source.js";
