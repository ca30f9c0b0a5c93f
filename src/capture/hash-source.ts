import { type BlockSource, dataRangesOf } from "../io/block-source.js";
import { allocAlignedPool } from "../io/aligned.js";
import { readFull, type SequentialSource } from "../io/stream-source.js";
import type { HashAlgorithm } from "./hasher.js";
import { FileSource } from "../io/file-source.js";
import { createHasher, InlineHasher, readsAroundCache } from "./parallel-hasher.js";

export interface HashProgress {
  done: number;
  /** undefined for a stream, whose size is known only at its end. */
  total?: number;
}

const CHUNK = 4 << 20;
/** Reads in flight ahead of the hashing; one more buffer is being hashed. */
const READ_AHEAD = 3;

/**
 * Digests of a whole source. Holes the source reports (sparse files) are fed
 * as zeros without being read, so a mostly-empty image hashes at memory speed.
 * Reads go into aligned shared buffers that a direct source fills in place
 * and the hashing workers read in place, several reads ahead of the hashing.
 */
export async function hashSource(
  source: BlockSource,
  algorithms: HashAlgorithm[],
  onProgress?: (p: HashProgress) => void,
): Promise<Record<string, string>> {
  // One algorithm over a file read through the page cache: the main thread has nothing else to do
  // while the thread pool reads ahead, so it hashes; a worker would add only its start-up and the
  // hand-offs (5% of a cached GiB here). Several algorithms, or bytes a decoder makes, go to workers.
  const inline = algorithms.length === 1 && source instanceof FileSource && !source.direct;
  const hasher: ReturnType<typeof createHasher> = inline ? new InlineHasher(algorithms) : createHasher(algorithms, source.size, readsAroundCache(source));
  try {
    const ranges = await dataRangesOf(source, 0, source.size);
    const pool = allocAlignedPool(READ_AHEAD + 1, Math.min(CHUNK, Math.max(1, source.size)));
    const hashed: Array<Promise<void> | void> = pool.map(() => undefined);
    const chunks = chunksOf(ranges);
    const reads: Array<{ pos: number; slot: number; read: Promise<Buffer> }> = [];
    let slot = 0;
    const readAhead = async () => {
      while (reads.length < READ_AHEAD) {
        const next = chunks.next();
        if (next.done) return;
        const [pos, length] = next.value;
        slot = (slot + 1) % pool.length;
        await hashed[slot]; // its last chunk is hashed: the buffer is free
        const read = source.read(pos, length, pool[slot].subarray(0, length));
        read.catch(() => {}); // awaited in order below
        reads.push({ pos, slot, read });
      }
    };
    let pos = 0;
    try {
      await readAhead();
      for (let head = reads.shift(); head; head = reads.shift()) {
        const data = await head.read;
        if (head.pos > pos) await hasher.updateZeros(head.pos - pos);
        const hashing = hasher.update(data);
        hashing?.catch(() => {}); // awaited before its buffer is reused, and by digest()
        hashed[head.slot] = hashing;
        pos = head.pos + data.length;
        onProgress?.({ done: pos, total: source.size });
        await readAhead();
      }
    } finally {
      // No read may still be filling a buffer when the source is closed.
      await Promise.allSettled(reads.map((r) => r.read));
    }
    if (source.size > pos) await hasher.updateZeros(source.size - pos);
    onProgress?.({ done: source.size, total: source.size });
    return await hasher.digest();
  } finally {
    await hasher.dispose?.();
  }
}

/** [position, length] pieces of at most CHUNK bytes covering the data ranges in order. */
function* chunksOf(ranges: Array<[number, number]>): Generator<[number, number]> {
  for (const [start, length] of ranges) {
    for (let pos = start; pos < start + length; pos += CHUNK) yield [pos, Math.min(CHUNK, start + length - pos)];
  }
}

/**
 * Digests of a stream read to its end (a pipe, a character device, standard
 * input): the next read fills one buffer while the workers hash the last.
 */
export async function hashStream(
  source: SequentialSource,
  algorithms: HashAlgorithm[],
  onProgress?: (p: HashProgress) => void,
): Promise<Record<string, string>> {
  // Its size is unknown: hash as for a large input.
  const hasher = createHasher(algorithms, Number.POSITIVE_INFINITY);
  try {
    const pool = allocAlignedPool(2, CHUNK);
    const hashed: Array<Promise<void> | void> = [undefined, undefined];
    let done = 0;
    for (let slot = 0; ; slot ^= 1) {
      await hashed[slot]; // the buffer is free once its last bytes are hashed
      const n = await readFull(source, pool[slot]);
      if (n === 0) break;
      const hashing = hasher.update(pool[slot].subarray(0, n));
      hashing?.catch(() => {}); // awaited before its buffer is reused, and by digest()
      hashed[slot] = hashing;
      done += n;
      onProgress?.({ done });
    }
    return await hasher.digest();
  } finally {
    await hasher.dispose?.();
  }
}
