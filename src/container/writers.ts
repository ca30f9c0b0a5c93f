/** Every container platter writes (convert, capture into a compressed or virtual disk). */
import { bzip2Writer } from "./bzip2/bzip2-writer.js";
import type { ContainerWriter } from "./format.js";
import { gzipWriter } from "./gzip/gzip-writer.js";
import { qcow2Writer } from "./qcow2/writer.js";
import { vhdWriter } from "./vhd/writer.js";
import { vhdxWriter } from "./vhdx/writer.js";
import { vmdkWriter } from "./vmdk/stream-writer.js";
import { xzWriter } from "./xz/writer.js";
import { zstdWriter } from "./zstd/writer.js";

export const CONTAINER_WRITERS: ContainerWriter[] = [
  qcow2Writer,
  zstdWriter,
  xzWriter,
  gzipWriter,
  bzip2Writer,
  vhdWriter,
  vhdxWriter,
  vmdkWriter,
];
