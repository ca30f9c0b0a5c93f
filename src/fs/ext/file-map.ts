/**
 * Where a file's blocks are: the extent tree or the classic block map
 * (12 direct, 1 indirect, 1 double, 1 triple), flattened into sorted runs of
 * logical -> physical blocks. Logical blocks in no run are holes.
 *
 * A hostile image can make either structure loop or fan out forever, so the
 * walk refuses to revisit a block, requires logical order, and never maps
 * more blocks than the filesystem has. A physical block mapped twice (by two
 * extents, or by an extent and a tree block) is corrupt, as e2fsck's
 * duplicate-block pass and the kernel's extent checks say: otherwise four
 * extents over the same 32768 blocks make a 4 GiB directory out of 128 MiB.
 */
import { CorruptImageError } from "../../errors.js";
import type { BlockCache } from "../block-cache.js";
import { decodeExtentNode } from "./extent.js";

export interface BlockRun {
  logical: number;
  physical: number;
  length: number;
  /** An unwritten (preallocated) extent: allocated, but reads as zeros. */
  unwritten: boolean;
}

/** A block of the map itself (an extent tree node, an indirect block) and the logical blocks found only through it. */
export interface MapBlock {
  block: number;
  logical: number;
  length: number;
}

/** Where a file's blocks are, and the blocks that say so. */
export interface FileMap {
  runs: BlockRun[];
  mapBlocks: MapBlock[];
}

export interface MapContext {
  cache: BlockCache;
  blockSize: number;
  blocksCount: number;
  /** Logical blocks at or past this are beyond i_size and not needed. */
  logicalLimit: number;
  /** For messages: "inode 12". */
  where: string;
}

class RunBuilder {
  readonly runs: BlockRun[] = [];
  private mapped = 0;
  private nextLogical = 0;

  constructor(private readonly ctx: MapContext) {}

  /** The map, once no physical block is in two runs, or in one and among `mapBlocks` (the tree's own blocks). */
  finish(mapBlocks: MapBlock[]): FileMap {
    const ranges: Array<readonly [number, number]> = this.runs.map((r) => [r.physical, r.length] as const);
    for (const { block } of mapBlocks) ranges.push([block, 1]);
    ranges.sort((a, b) => a[0] - b[0]);
    for (let i = 1; i < ranges.length; i++) {
      const [start, length] = ranges[i - 1] as readonly [number, number];
      const next = (ranges[i] as readonly [number, number])[0];
      if (next < start + length) throw this.duplicate(next);
    }
    return { runs: this.runs, mapBlocks };
  }

  private duplicate(block: number): CorruptImageError {
    return new CorruptImageError(`ext ${this.ctx.where}: block ${block} is mapped twice (a duplicate block)`);
  }

  add(logical: number, physical: number, length: number, unwritten: boolean): void {
    const { ctx } = this;
    if (logical < this.nextLogical) {
      throw new CorruptImageError(`ext ${ctx.where}: block map is out of order or overlaps itself at logical block ${logical}`);
    }
    if (physical < 1 || physical + length > ctx.blocksCount) {
      throw new CorruptImageError(
        `ext ${ctx.where}: blocks ${physical}..${physical + length - 1} are past the end of the filesystem (${ctx.blocksCount} blocks)`,
      );
    }
    this.mapped += length;
    if (this.mapped > ctx.blocksCount) {
      throw new CorruptImageError(`ext ${ctx.where}: maps more blocks than the filesystem has`);
    }
    this.nextLogical = logical + length;
    const last = this.runs[this.runs.length - 1];
    if (last && last.unwritten === unwritten && last.logical + last.length === logical && last.physical + last.length === physical) {
      last.length += length;
    } else {
      this.runs.push({ logical, physical, length, unwritten });
    }
  }
}

function checkMetaBlock(ctx: MapContext, block: number, seen: Set<number>, what: string): void {
  if (block < 1 || block >= ctx.blocksCount) {
    throw new CorruptImageError(`ext ${ctx.where}: ${what} block ${block} is outside the filesystem`);
  }
  if (seen.has(block)) throw new CorruptImageError(`ext ${ctx.where}: ${what} block ${block} is used twice (a loop)`);
  seen.add(block);
}

/** The map of a file whose i_block holds an extent tree root. */
export async function mapExtents(root: Buffer, ctx: MapContext): Promise<FileMap> {
  const builder = new RunBuilder(ctx);
  const seen = new Set<number>();
  const mapBlocks: MapBlock[] = [];
  const walk = async (node: Buffer, expectDepth: number | undefined, where: string): Promise<void> => {
    const decoded = decodeExtentNode(node, `${ctx.where} ${where}`);
    if (expectDepth !== undefined && decoded.depth !== expectDepth) {
      throw new CorruptImageError(`ext ${ctx.where}: extent node ${where} has depth ${decoded.depth}, expected ${expectDepth}`);
    }
    if ("leaves" in decoded) {
      for (const leaf of decoded.leaves) {
        if (leaf.logical >= ctx.logicalLimit) break;
        if (leaf.length === 0) continue;
        const length = Math.min(leaf.length, ctx.logicalLimit - leaf.logical);
        builder.add(leaf.logical, leaf.physical, length, leaf.unwritten);
      }
      return;
    }
    for (const [i, index] of decoded.indexes.entries()) {
      if (index.logical >= ctx.logicalLimit) break;
      checkMetaBlock(ctx, index.child, seen, "extent tree");
      const spanEnd = Math.min(decoded.indexes[i + 1]?.logical ?? ctx.logicalLimit, ctx.logicalLimit);
      mapBlocks.push({ block: index.child, logical: index.logical, length: Math.max(0, spanEnd - index.logical) });
      const child = await ctx.cache.get(index.child);
      await walk(child, decoded.depth - 1, `block ${index.child}`);
    }
  };
  await walk(root, undefined, "root");
  return builder.finish(mapBlocks);
}

/** The map of a file with a classic block map: i_block is 15 little-endian block numbers. */
export async function mapBlockMap(iBlock: Buffer, ctx: MapContext): Promise<FileMap> {
  const builder = new RunBuilder(ctx);
  const seen = new Set<number>();
  const mapBlocks: MapBlock[] = [];
  const perBlock = ctx.blockSize / 4;
  const walk = async (block: number, level: number, firstLogical: number): Promise<void> => {
    checkMetaBlock(ctx, block, seen, "indirect");
    const span = perBlock ** (level - 1);
    mapBlocks.push({ block, logical: firstLogical, length: Math.min(span * perBlock, ctx.logicalLimit - firstLogical) });
    const pointers = await ctx.cache.get(block);
    for (let i = 0; i < perBlock; i++) {
      const logical = firstLogical + i * span;
      if (logical >= ctx.logicalLimit) return;
      const ptr = pointers.readUInt32LE(i * 4);
      if (ptr === 0) continue;
      if (level === 1) builder.add(logical, ptr, 1, false);
      else await walk(ptr, level - 1, logical);
    }
  };
  for (let i = 0; i < 12 && i < ctx.logicalLimit; i++) {
    const ptr = iBlock.readUInt32LE(i * 4);
    if (ptr !== 0) builder.add(i, ptr, 1, false);
  }
  let first = 12;
  for (let level = 1; level <= 3 && first < ctx.logicalLimit; level++) {
    const ptr = iBlock.readUInt32LE((11 + level) * 4);
    if (ptr !== 0) await walk(ptr, level, first);
    first += perBlock ** level;
  }
  return builder.finish(mapBlocks);
}

/** Index of the last run starting at or before `logical`, or -1. */
export function findRun(runs: BlockRun[], logical: number): number {
  let lo = 0;
  let hi = runs.length - 1;
  let found = -1;
  while (lo <= hi) {
    const mid = (lo + hi) >> 1;
    if (runs[mid].logical <= logical) {
      found = mid;
      lo = mid + 1;
    } else {
      hi = mid - 1;
    }
  }
  return found;
}
