/**
 * Bit-flip fuzzing for filesystem readers: open each damaged copy of an image
 * in process, walk it, read the head and tail of every file, follow every
 * link. A copy must read fine or end in a PlatterError: a RangeError, a
 * TypeError or a reader that loops fails the test.
 *
 * A loop is caught by counting work, not by a clock: every copy reads through
 * a ReadBudgetSource that refuses to read more than a few times the image, and
 * the walk visits a bounded number of nodes. So the verdict is the same on a
 * fast machine and on a loaded one, and a hang ends in a message naming the
 * copy that caused it.
 */
import { PlatterError } from "../../src/errors.js";
import { resolvePath } from "../../src/fs/path.js";
import type { FileSystem, FsNode } from "../../src/fs/types.js";
import { joinPath } from "../../src/fs/walk.js";
import type { BlockSource } from "../../src/io/block-source.js";
import { MemorySource } from "../../src/io/memory-source.js";
import { endsCleanly, ReadBudgetSource } from "./read-budget.js";

/** The image with a few bytes changed, without copying it (images are megabytes, copies are a thousand). */
class FlippedSource extends MemorySource {
  constructor(
    data: Buffer,
    private readonly flips: Map<number, number>,
  ) {
    super(data);
  }

  override async read(offset: number, length: number, into?: Buffer): Promise<Buffer> {
    const out = await super.read(offset, length, into);
    for (const [at, mask] of this.flips) {
      if (at >= offset && at < offset + length) out[at - offset] = (out[at - offset] as number) ^ mask;
    }
    return out;
  }
}

/** A small seeded generator (xorshift32), so a failing copy can be rebuilt from its number. */
/**
 * Copies per fixture in the suite. Crafted images, not random flips, found the
 * readers' defects (none of 17,000 random copies did), so the suite keeps a
 * few hundred per fixture; PLATTER_FUZZ_COPIES=10000 runs a long hammer.
 */
export const FUZZ_COPIES = Number(process.env.PLATTER_FUZZ_COPIES ?? 300);

export function prng(seed: number): () => number {
  let x = seed >>> 0 || 1;
  return () => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return (x >>> 0) / 0x100000000;
  };
}

export interface ExploreLimits {
  /** Most nodes visited (a flipped count can claim millions of entries). */
  maxNodes: number;
  /** Bytes read at the head and at the tail of each file; 0 reads no file data. */
  maxRead: number;
}

/**
 * Walk breadth-first (bounded) and read; returns normally or throws what the
 * reader threw. A directory reached twice (a flipped entry pointing back up)
 * is listed once: walking a cycle is the walker's loop, not the reader's.
 */
async function explore(fs: FileSystem<FsNode>, { maxNodes, maxRead }: ExploreLimits): Promise<void> {
  const root = await fs.root();
  const queue: Array<[FsNode, string]> = [[root, "/"]];
  const listed = new Set<number | string | null>([root.stat.id]);
  let visited = 0;
  while (queue.length > 0 && visited < maxNodes) {
    const [dir, path] = queue.shift() as [FsNode, string];
    for await (const { name, node } of fs.list(dir)) {
      if (++visited > maxNodes) break;
      const st = node.stat;
      if (st.type === "dir") {
        if (st.id !== null && listed.has(st.id)) continue;
        if (st.id !== null) listed.add(st.id);
        queue.push([node, joinPath(path, name)]);
      } else if (st.type === "symlink") {
        await fs.readlink(node);
        // A link that leads nowhere is a fine answer; the walk goes on.
        await resolvePath(fs, joinPath(path, name)).catch((err) => {
          if (!(err instanceof PlatterError)) throw err;
        });
      } else if (st.type === "file" && maxRead > 0) {
        await fs.dataRanges?.(node);
        const head = Math.min(st.size, maxRead);
        await fs.read(node, 0, head);
        const tail = Math.min(st.size - head, maxRead);
        if (tail > 0) await fs.read(node, st.size - tail, tail);
      }
    }
  }
}

export type Outcome = "read" | "failed at open" | "failed while read";

export interface TryOptions extends ExploreLimits {
  /** Most bytes the copy may read, in sizes of the image. */
  readBudget: number;
}

/**
 * A whole walk of the fixtures (3,000 nodes at most), with room for a
 * flipped count to claim more. The copy that reads most, over every
 * fixture, reads 0.7 times its image (zstd squashfs); reading it 4 times is
 * a loop.
 */
const DEEP: TryOptions = { maxNodes: 20_000, maxRead: 64 * 1024, readBudget: 4 };

/**
 * Open `image` and explore it within the budget. Returns how it ended;
 * fails the test (naming `what`) on anything but a PlatterError, or when
 * the copy read more than its budget.
 */
export async function tryImage(
  image: Buffer,
  open: (source: BlockSource) => Promise<FileSystem<FsNode>>,
  what: string,
  options: TryOptions = DEEP,
  flips = new Map<number, number>(),
): Promise<{ outcome: Outcome; bytesRead: number }> {
  const source = new ReadBudgetSource(new FlippedSource(image, flips), Math.max(image.length, 1 << 20) * options.readBudget);
  let outcome: Outcome = "failed at open";
  await endsCleanly(what, source, async () => {
    const fs = await open(source);
    outcome = "failed while read";
    try {
      await explore(fs, options);
    } finally {
      await fs.close();
    }
    outcome = "read";
  });
  return { outcome, bytesRead: source.bytesRead };
}

export interface FuzzOptions {
  copies: number;
  /** Byte ranges [start, end) where flips matter most (superblock, tables); half the flips land there, the others in any sector that is not all zeros. */
  hot: Array<[number, number]>;
  /** Flips per copy: 1 to this many. */
  maxFlips?: number;
  /** Share of copies also cut short at a random length. */
  truncated?: number;
  /**
   * Every n-th copy is walked whole (up to DEEP's limits) and its files'
   * data read; the others visit `maxNodes` nodes and read no data
   * (decompressing 1 MiB blocks and listing big directories a thousand
   * times is slow).
   */
  deepEvery?: number;
  maxNodes?: number;
}

export interface FuzzResult {
  copies: number;
  /** Copies that opened (then read fine or failed while read). */
  opened: number;
  /** Copies that ended in a PlatterError, at open or later: each counted once. */
  failed: number;
  /** The most one copy read, in sizes of the image: how close to the budget the fuzz came. */
  mostRead: number;
}

/** Offsets of the sectors (512 bytes) that hold anything: a flip among zeros in unused space tests nothing. */
function usedSectors(image: Buffer): number[] {
  const used: number[] = [];
  for (let s = 0; s * 512 < image.length; s++) {
    if (image.subarray(s * 512, s * 512 + 512).some((b) => b !== 0)) used.push(s * 512);
  }
  return used;
}

/** `copies` damaged copies of `image`, each through tryImage; copy k is rebuilt from seed k + 1. */
export async function fuzzImage(
  image: Buffer,
  open: (source: BlockSource) => Promise<FileSystem<FsNode>>,
  options: FuzzOptions,
): Promise<FuzzResult> {
  const { copies, hot, maxFlips = 4, truncated = 0, deepEvery = 10, maxNodes = 40 } = options;
  const result: FuzzResult = { copies, opened: 0, failed: 0, mostRead: 0 };
  const hotBytes = hot.reduce((n, [s, e]) => n + (e - s), 0);
  const used = usedSectors(image);
  for (let copy = 0; copy < copies; copy++) {
    const random = prng(copy + 1);
    const flips = new Map<number, number>();
    const count = 1 + Math.floor(random() * maxFlips);
    for (let f = 0; f < count; f++) {
      let at = used.length > 0 ? (used[Math.floor(random() * used.length)] as number) + Math.floor(random() * 512) : 0;
      if (hotBytes > 0 && random() < 0.5) {
        let pick = Math.floor(random() * hotBytes);
        for (const [s, e] of hot) {
          if (pick < e - s) {
            at = s + pick;
            break;
          }
          pick -= e - s;
        }
      }
      if (at < image.length) flips.set(at, (flips.get(at) ?? 0) ^ (1 << Math.floor(random() * 8)));
    }
    const size = random() < truncated ? Math.floor(random() * image.length) : image.length;
    const deep = copy % deepEvery === 0;
    const { outcome, bytesRead } = await tryImage(
      image.subarray(0, size),
      open,
      `copy ${copy} (seed ${copy + 1}, size ${size}, flips ${JSON.stringify([...flips])})`,
      deep ? DEEP : { ...DEEP, maxNodes, maxRead: 0 },
      flips,
    );
    if (outcome !== "failed at open") result.opened++;
    if (outcome !== "read") result.failed++;
    result.mostRead = Math.max(result.mostRead, bytesRead / image.length);
  }
  return result;
}
