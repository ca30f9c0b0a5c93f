/**
 * Bit-flip fuzzing for filesystem readers: open each damaged copy through a
 * MemorySource, walk it, read some of every file. Anything but a clean
 * PlatterError (a RangeError, a TypeError, a hang) fails the test.
 */
import assert from "node:assert/strict";
import { PlatterError } from "../../src/errors.js";
import type { FileSystem, FsNode } from "../../src/fs/types.js";
import type { BlockSource } from "../../src/io/block-source.js";
import { MemorySource } from "../../src/io/memory-source.js";

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
export function prng(seed: number): () => number {
  let x = seed >>> 0 || 1;
  return () => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return (x >>> 0) / 0x100000000;
  };
}

export interface FuzzOptions {
  copies: number;
  /** Byte ranges [start, end) where flips matter most (superblock, tables); half the flips land there. */
  hot: Array<[number, number]>;
  /** Most nodes visited per copy, and most bytes read per file: keeps each copy to milliseconds. */
  maxNodes?: number;
  /**
   * Every n-th copy is walked whole and its files' data read (decompressing
   * 1 MiB blocks and listing big directories a thousand times is slow); the
   * others visit maxNodes nodes and read no data.
   */
  deepEvery?: number;
  maxRead?: number;
  /** A copy that takes longer than this is a hang. */
  maxMs?: number;
}

/** Walk (breadth-first, bounded) and read; returns normally or throws what the reader threw. */
export async function explore(fs: FileSystem<FsNode>, maxNodes: number, maxRead: number): Promise<void> {
  const queue: FsNode[] = [await fs.root()];
  let visited = 0;
  while (queue.length > 0) {
    const dir = queue.shift() as FsNode;
    if (visited >= maxNodes) break;
    for await (const { node } of fs.list(dir)) {
      if (++visited > maxNodes) break;
      if (node.stat.type === "dir") queue.push(node);
      else if (node.stat.type === "symlink") await fs.readlink(node);
      else if (node.stat.type === "file") {
        await fs.dataRanges?.(node);
        await fs.read(node, 0, Math.min(node.stat.size, maxRead));
      }
    }
  }
}

export interface FuzzResult {
  opened: number;
  failedCleanly: number;
  slowestMs: number;
}

export async function fuzzImage(
  image: Buffer,
  open: (source: BlockSource) => Promise<FileSystem<FsNode>>,
  options: FuzzOptions,
): Promise<FuzzResult> {
  const { copies, hot, maxNodes = 40, deepEvery = 10, maxRead = 64 * 1024, maxMs = 5000 } = options;
  const result: FuzzResult = { opened: 0, failedCleanly: 0, slowestMs: 0 };
  const hotBytes = hot.reduce((n, [s, e]) => n + (e - s), 0);
  for (let copy = 0; copy < copies; copy++) {
    const random = prng(copy + 1);
    const flips = new Map<number, number>();
    const count = 1 + Math.floor(random() * 4);
    for (let f = 0; f < count; f++) {
      let at = Math.floor(random() * image.length);
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
      flips.set(at, (flips.get(at) ?? 0) ^ (1 << Math.floor(random() * 8)));
    }
    const started = performance.now();
    try {
      const fs = await open(new FlippedSource(image, flips));
      result.opened++;
      const deep = copy % deepEvery === 0;
      await explore(fs, deep ? Number.POSITIVE_INFINITY : maxNodes, deep ? maxRead : 0);
      await fs.close();
    } catch (err) {
      if (!(err instanceof PlatterError)) {
        assert.fail(`copy ${copy} (seed ${copy + 1}): ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
      }
      result.failedCleanly++;
    }
    const ms = performance.now() - started;
    result.slowestMs = Math.max(result.slowestMs, ms);
    assert.ok(ms < maxMs, `copy ${copy} took ${ms.toFixed(0)} ms`);
  }
  return result;
}
