/**
 * Reading .xz images: found by the stream header magic, read with random
 * access per block through the index at the end of each stream. A file of
 * one large block (what plain `xz` writes) can only be read from its start.
 */
import type { BlockSource } from "../../io/block-source.js";
import type { ContainerContext, ContainerFormat, ContainerSource } from "../format.js";
import { FramedSource } from "../framed-source.js";
import { defaultThreads } from "../native-library.js";
import { XzBlockCodec } from "./block-codec.js";
import { decodeBlockHeader, FILTER_LZMA2, lzma2DictionarySize } from "./block-header.js";
import { readXzBlocks } from "./block-list.js";
import type { FrameTable } from "../frame-table.js";
import { requireLzma } from "./liblzma.js";
import { checkName, XZ_MAGIC } from "./stream-header.js";

/** What one decoder may allocate: enough for xz -9's 64 MiB dictionary. */
const MEMORY_LIMIT = 80 << 20;
/** Blocks whose dictionary is larger than this are decoded one at a time, so memory stays bounded. */
const PARALLEL_DICTIONARY = 16 << 20;

export const xzFormat: ContainerFormat = {
  name: "xz",

  detect(head: Buffer): boolean {
    return head.length >= XZ_MAGIC.length && head.subarray(0, XZ_MAGIC.length).equals(XZ_MAGIC);
  },

  async open(below: BlockSource, _context: ContainerContext): Promise<ContainerSource> {
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
  },
};

/** The LZMA2 dictionary size of the first block (blocks of one file share their settings), or 0 when it does not say. */
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
