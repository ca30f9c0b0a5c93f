/** Opening a .xz image: the block list from each stream's index, blocks decoded on demand by liblzma. */
import type { BlockSource } from "../../io/block-source.js";
import type { ContainerSource } from "../format.js";
import type { FrameTable } from "../frame-table.js";
import { FramedSource } from "../framed-source.js";
import { defaultThreads } from "../native-library.js";
import { XzBlockCodec } from "./block-codec.js";
import { decodeBlockHeader, FILTER_LZMA2, lzma2DictionarySize } from "./block-header.js";
import { readXzBlocks } from "./block-list.js";
import { requireLzma } from "./liblzma.js";
import { checkName } from "./stream-header.js";

/** What one decoder may allocate: enough for xz -9's 64 MiB dictionary. */
const MEMORY_LIMIT = 80 << 20;
/** Blocks whose dictionary is larger than this are decoded one at a time, so memory stays bounded. */
const PARALLEL_DICTIONARY = 16 << 20;

export async function openXz(below: BlockSource): Promise<ContainerSource> {
  requireLzma();
  const layout = await readXzBlocks(below);
  const dictionary = await firstDictionary(below, layout.blocks);
  return new FramedSource({
    format: "xz",
    below,
    frames: layout.blocks,
    codec: new XzBlockCodec(below.name, MEMORY_LIMIT),
    threads: dictionary > PARALLEL_DICTIONARY ? 1 : defaultThreads(),
    unit: "block",
    details: { streams: layout.streams, check: layout.checks.map(checkName).join(", ") || "none", ...(dictionary ? { dictionary } : {}) },
  });
}

async function firstDictionary(below: BlockSource, blocks: FrameTable): Promise<number> {
  let first = 0;
  while (first < blocks.length && blocks.size(first) === 0) first++;
  if (first === blocks.length) return 0;
  const block = blocks.get(first);
  const header = decodeBlockHeader(await below.read(block.offset, Math.min(1024, block.compressedSize)));
  if (typeof header === "string") return 0; // decoding the block says what is wrong with it
  const lzma2 = header.filters.find((f) => f.id === FILTER_LZMA2);
  return (lzma2 && lzma2DictionarySize(lzma2.properties)) ?? 0;
}
