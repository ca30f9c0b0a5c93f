/**
 * 1,000 bit-flipped (and sometimes truncated) copies of each small fixture,
 * read in process through an in-memory source: open, walk everything, read
 * the head and tail of every file, read every link. Each copy must end in
 * success or a PlatterError: never another exception, never a hang.
 */
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { before, describe, test } from "node:test";
import { PlatterError } from "../../src/errors.js";
import type { BlockSource } from "../../src/io/block-source.js";
import { checkRange, targetBuffer } from "../../src/io/bounds.js";
import { openFilesystem } from "../../src/fs/open.js";
import { resolvePath } from "../../src/fs/path.js";
import { walk } from "../../src/fs/walk.js";
import { needs } from "../helpers/env.js";
import { fixture } from "../helpers/fixtures.js";

const COPIES = Number(process.env.PLATTER_FUZZ_COPIES ?? 1000);
const MAX_MS_PER_COPY = 3000;

/** The fixture's bytes with some bits flipped and maybe a shorter size; nothing is copied. */
class FlippedSource implements BlockSource {
  readonly sectorSize = 512;
  readonly name = "fuzzed";
  constructor(
    private readonly base: Buffer,
    private readonly flips: Map<number, number>,
    readonly size: number,
  ) {}
  async read(offset: number, length: number, into?: Buffer): Promise<Buffer> {
    checkRange(this.name, this.size, offset, length);
    const out = targetBuffer(length, into);
    this.base.copy(out, 0, offset, offset + length);
    for (const [at, mask] of this.flips) if (at >= offset && at < offset + length) out[at - offset] ^= mask;
    return out;
  }
  async close(): Promise<void> {}
}

/** xorshift32: reproducible copies; a failure prints the seed. */
function rng(seed: number): () => number {
  let x = seed || 1;
  return () => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return (x >>> 0) / 2 ** 32;
  };
}

/** Offsets worth flipping: half in the first 64 KiB (boot sector, superblock, tables), half in any non-zero sector. */
function targets(base: Buffer): number[] {
  const sectors: number[] = [];
  for (let s = 0; s * 512 < base.length; s++) {
    const sector = base.subarray(s * 512, s * 512 + 512);
    if (sector.some((b) => b !== 0)) sectors.push(s);
  }
  return sectors;
}

async function exercise(source: BlockSource): Promise<void> {
  const fs = await openFilesystem(source);
  const root = await fs.root();
  let budget = 400; // entries per copy: a flipped folder can claim a lot
  for await (const e of walk(fs, root, "/")) {
    if (--budget < 0) break;
    const st = e.node.stat;
    if (st.type === "file") {
      const head = Math.min(st.size, 65536);
      await fs.read(e.node, 0, head);
      if (st.size > head) await fs.read(e.node, st.size - Math.min(65536, st.size - head), Math.min(65536, st.size - head));
      await fs.dataRanges?.(e.node);
    } else if (st.type === "symlink") {
      await fs.readlink(e.node);
      await resolvePath(fs, e.path).catch((err) => {
        if (!(err instanceof PlatterError)) throw err;
      });
    }
  }
}

const FIXTURES: Array<[script: string, out: string, image: string]> = [
  ["make-ext-images.sh", "ext", "small-ext4.img"],
  ["make-ext-images.sh", "ext", "small-ext2.img"],
  ["make-fat-images.sh", "fat", "fat12.img"],
  ["make-fat-images.sh", "fat", "fat16.img"],
  ["make-fat-images.sh", "fat", "fat32.img"],
];

describe(`fuzz: ${COPIES} bit-flipped copies of each fixture`, { skip: needs("mkfs.ext4", "mkfs.vfat", "mcopy") }, () => {
  const images = new Map<string, Buffer>();
  before(async () => {
    for (const [script, out, image] of FIXTURES) images.set(image, readFileSync(join(await fixture(script, out), image)));
  });

  for (const [, , image] of FIXTURES) {
    test(`${image}: every copy reads cleanly or fails with a PlatterError`, async (t) => {
      const base = images.get(image) as Buffer;
      const where = targets(base);
      await exercise(new FlippedSource(base, new Map(), base.length)); // the pristine image reads without error
      let failures = 0;
      let slowest = 0;
      for (let i = 1; i <= COPIES; i++) {
        const seed = (i * 2654435761) >>> 0;
        const random = rng(seed);
        const flips = new Map<number, number>();
        const count = 1 + Math.floor(random() * 16);
        for (let f = 0; f < count; f++) {
          const at =
            random() < 0.5
              ? Math.floor(random() * Math.min(65536, base.length))
              : where[Math.floor(random() * where.length)] * 512 + Math.floor(random() * 512);
          flips.set(at, (flips.get(at) ?? 0) ^ (1 << Math.floor(random() * 8)));
        }
        const size = random() < 0.1 ? Math.floor(random() * base.length) : base.length;
        const started = Date.now();
        try {
          await exercise(new FlippedSource(base, flips, size));
        } catch (err) {
          if (!(err instanceof PlatterError)) {
            assert.fail(`copy ${i} (seed ${seed}, flips ${JSON.stringify([...flips])}, size ${size}): ${(err as Error).stack}`);
          }
          failures++;
        }
        slowest = Math.max(slowest, Date.now() - started);
        assert.ok(slowest < MAX_MS_PER_COPY, `copy ${i} (seed ${seed}) took ${slowest} ms`);
      }
      t.diagnostic(`${failures} of ${COPIES} copies ended in a PlatterError; slowest ${slowest} ms`);
    });
  }
});
