/**
 * Opening a gzip layer with the cheapest index that works:
 *  1. one kept in the IndexCache by an earlier run;
 *  2. member sizes from the headers (platter's own .gz, BGZF): no inflating;
 *  3. a full inflate pass with access points every MiB (gzip, pigz, concatenated
 *     files), kept in the cache for the next run;
 *  4. without the system zlib: sequential reads (sequential-source.ts).
 */
import type { BlockSource } from "../../io/block-source.js";
import type { ContainerContext, ContainerSource } from "../format.js";
import { type AccessIndex, decodeAccessIndex, encodeAccessIndex } from "./access-index.js";
import { GzipSource, type GzipLayout } from "./gzip-source.js";
import { indexByInflating } from "./index-pass.js";
import { walkSizedMembers } from "./member-walk.js";
import { SequentialGzipSource } from "./sequential-source.js";

const CACHE_NAME = "gzip-index-v1";

export async function openGzip(source: BlockSource, context: ContainerContext): Promise<ContainerSource> {
  const warn = context.onWarning;
  const cached = await loadCachedIndex(source, context);
  if (cached) return finish(new GzipSource(source, cached.index, cached.layout, "cache"), warn);
  const walked = await walkSizedMembers(source, warn);
  if (walked) {
    await saveIndex(walked.index, walked.layout, context);
    return finish(new GzipSource(source, walked.index, walked.layout, "headers"), warn);
  }
  const index = await indexByInflating(source, { onWarning: warn });
  if (!index) return SequentialGzipSource.open(source, warn);
  await saveIndex(index, "stream", context);
  return finish(new GzipSource(source, index, "stream", "inflate pass"), warn);
}

function finish(opened: GzipSource, warn?: (message: string) => void): GzipSource {
  const damage = opened.index.damage;
  if (damage) {
    warn?.(`${opened.name}: gzip data is damaged at offset ${damage.compressedOffset}: ${damage.message}; the first ${opened.size} bytes of the image are readable`);
  }
  return opened;
}

/** The cached index is the layout's first byte ("p", "b", "s") and the encoded AccessIndex. */
async function loadCachedIndex(source: BlockSource, context: ContainerContext): Promise<{ index: AccessIndex; layout: GzipLayout } | undefined> {
  const data = await context.indexCache?.load(CACHE_NAME);
  if (!data || data.length < 1) return undefined;
  const layout = ({ p: "platter", b: "bgzf", s: "stream" } as const)[data.toString("latin1", 0, 1) as "p" | "b" | "s"];
  if (!layout) return undefined;
  try {
    return { index: decodeAccessIndex(data.subarray(1), source.size), layout };
  } catch {
    return undefined; // a cache that does not fit is rebuilt, not trusted
  }
}

async function saveIndex(index: AccessIndex, layout: GzipLayout, context: ContainerContext): Promise<void> {
  if (!context.indexCache) return;
  await context.indexCache.save(CACHE_NAME, Buffer.concat([Buffer.from(layout[0] as string, "latin1"), encodeAccessIndex(index)]));
}
