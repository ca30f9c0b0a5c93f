/** Opening a .zst image: its frame index (seek table, or a walk over frame headers), frames decoded on demand. */
import type { BlockSource } from "../../io/block-source.js";
import type { ContainerContext, ContainerSource } from "../format.js";
import { FramedSource } from "../framed-source.js";
import { defaultThreads } from "../native-library.js";
import { ZstdFrameCodec } from "./frame-codec.js";
import { readZstdIndex } from "./frame-index.js";
import { requireZstd } from "./libzstd.js";

export async function openZstd(below: BlockSource, context: ContainerContext): Promise<ContainerSource> {
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
}
