/**
 * The part of a capture's hash that could not be taken in passing: bytes
 * that reached DEST out of order (after a read error the copier skips ahead
 * and comes back) or in an earlier run. They are hashed by reading DEST, the
 * final zero-filled image, never SOURCE: a failing drive is read as little
 * as possible.
 */
import { allocHuge } from "../io/aligned.js";
import { type BlockSource, dataRangesOf } from "../io/block-source.js";
import type { InOrderHasher } from "./image-writer.js";
import type { RescueMap } from "./rescue-map.js";

const HASH_CHUNK = 4 << 20;

/**
 * Hash the finished image from the hasher's frontier up to `to` by reading
 * DEST back (`image`: the file, or the image a compressed or virtual-disk
 * DEST holds; closed here): rescued runs are read (holes of a sparse DEST
 * and bytes past its end are zeros without reading), bad runs are zeros.
 * Returns bytes read.
 */
export async function hashFromDest(
  image: BlockSource,
  origin: number,
  map: RescueMap,
  hasher: InOrderHasher,
  to: number,
  onProgress: (hashed: number) => void,
): Promise<number> {
  const buf = allocHuge(HASH_CHUNK);
  let read = 0;
  try {
    while (hasher.frontier < to) {
      const run = map.runAt(hasher.frontier);
      const runEnd = Math.min(run.end, to);
      if (run.status !== "+") {
        if (run.status !== "-") throw new Error(`internal: hashing an unfinished area at ${hasher.frontier}`);
        await hasher.offerZeros(hasher.frontier, runEnd - hasher.frontier);
        continue;
      }
      // DEST offsets of this run that exist in the file.
      const a = hasher.frontier - origin;
      const b = Math.min(runEnd - origin, image.size);
      const ranges: Array<[number, number]> = a >= b ? [] : await dataRangesOf(image, a, b - a);
      for (const [s, len] of ranges) {
        await hasher.offerZeros(hasher.frontier, s + origin - hasher.frontier);
        for (let pos = s; pos < s + len; ) {
          const n = Math.min(HASH_CHUNK, s + len - pos);
          await hasher.offer(pos + origin, await image.read(pos, n, buf));
          read += n;
          pos += n;
          onProgress(hasher.frontier - origin);
        }
      }
      await hasher.offerZeros(hasher.frontier, runEnd - hasher.frontier);
    }
    return read;
  } finally {
    await image.close();
  }
}
