/**
 * Opening a bzip2 layer: indexed from platter's trailer, from the IndexCache,
 * or by decoding every block once (then kept in the cache).
 */
import type { BlockSource } from "../../io/block-source.js";
import type { ContainerContext, ContainerSource } from "../format.js";
import { Bzip2Source } from "./bzip2-source.js";
import { buildUnitIndex } from "./index-build.js";
import { decodeUnitIndex, encodeUnitIndex, type UnitIndex } from "./unit-index.js";

const CACHE_NAME = "bzip2-index-v1";

export async function openBzip2(source: BlockSource, context: ContainerContext): Promise<ContainerSource> {
  const cached = await loadCachedIndex(source, context);
  if (cached) return finish(new Bzip2Source(source, cached, "cache"), context);
  const index = await buildUnitIndex(source, context.onWarning);
  if (!index.platter) await context.indexCache?.save(CACHE_NAME, encodeUnitIndex(index));
  return finish(new Bzip2Source(source, index, index.platter ? "trailer" : "decoding pass"), context);
}

function finish(opened: Bzip2Source, context: ContainerContext): Bzip2Source {
  const damage = opened.index.damage;
  if (damage) context.onWarning?.(`${opened.name}: ${damage.message}; the first ${opened.size} bytes of the image are readable`);
  return opened;
}

async function loadCachedIndex(source: BlockSource, context: ContainerContext): Promise<UnitIndex | undefined> {
  const data = await context.indexCache?.load(CACHE_NAME);
  if (!data) return undefined;
  try {
    return decodeUnitIndex(data, source.size);
  } catch {
    return undefined; // a cache that does not fit is rebuilt, not trusted
  }
}
