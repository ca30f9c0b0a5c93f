import type { BlockSource } from "../io/block-source.js";
import { MultiHasher, type HashAlgorithm } from "./hasher.js";

export interface HashProgress {
  done: number;
  total: number;
}

const CHUNK = 4 << 20;

/**
 * Digests of a whole source. Holes the source reports (sparse files) are fed
 * as zeros without being read, so a mostly-empty image hashes at memory speed.
 * The next chunk is read while the current one is hashed.
 */
export async function hashSource(
  source: BlockSource,
  algorithms: HashAlgorithm[],
  onProgress?: (p: HashProgress) => void,
): Promise<Record<string, string>> {
  const hasher = new MultiHasher(algorithms);
  const ranges = source.dataRanges ? await source.dataRanges(0, source.size) : [[0, source.size] as [number, number]];
  let pos = 0;
  const feedZeros = (upTo: number) => {
    hasher.updateZeros(upTo - pos);
    pos = Math.max(pos, upTo);
  };
  for (const [start, length] of ranges) {
    feedZeros(start);
    const end = start + length;
    let next: Promise<Buffer> | undefined = start < end ? source.read(start, Math.min(CHUNK, end - start)) : undefined;
    while (next) {
      const chunk = await next;
      const after = pos + chunk.length;
      next = after < end ? source.read(after, Math.min(CHUNK, end - after)) : undefined;
      hasher.update(chunk);
      pos = after;
      onProgress?.({ done: pos, total: source.size });
    }
  }
  feedZeros(source.size);
  onProgress?.({ done: source.size, total: source.size });
  return hasher.digest();
}
