/**
 * Reading .zst images: found by the frame magic (or a leading skippable
 * frame, as pzstd writes), read with random access through the frame index.
 */
import type { BlockSource } from "../../io/block-source.js";
import type { ContainerContext, ContainerFormat, ContainerSource } from "../format.js";
import { FramedSource } from "../framed-source.js";
import { defaultThreads } from "../native-library.js";
import { ZstdFrameCodec } from "./frame-codec.js";
import { isSkippableMagic, ZSTD_MAGIC } from "./frame-header.js";
import { readZstdIndex } from "./frame-index.js";
import { requireZstd } from "./libzstd.js";

export const zstdFormat: ContainerFormat = {
  name: "zstd",

  detect(head: Buffer): boolean {
    if (head.length < 4) return false;
    const magic = head.readUInt32LE(0);
    return magic === ZSTD_MAGIC || isSkippableMagic(magic);
  },

  async open(below: BlockSource, context: ContainerContext): Promise<ContainerSource> {
    requireZstd();
    const index = await readZstdIndex(below, context);
    return new FramedSource({
      format: "zstd",
      below,
      frames: index.frames,
      codec: new ZstdFrameCodec(below.name),
      threads: defaultThreads(),
      unit: "frame",
      details: { index: index.from, checksums: index.checksums },
    });
  },
};
