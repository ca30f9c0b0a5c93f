import assert from "node:assert/strict";
import { mkdirSync, readFileSync, symlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import { PlatterError } from "../../../src/errors.js";
import { openIso9660, type IsoNode } from "../../../src/fs/iso9660/index.js";
import { buildIso } from "../../../src/fs/iso9660/writer/index.js";
import { FileSink } from "../../../src/io/file-sink.js";
import { MemorySource } from "../../../src/io/memory-source.js";
import { tempDir } from "../../helpers/tmp.js";

/** A small image with every structure the reader parses: RR with CE, relocation, Joliet, El Torito. */
async function sampleImage(): Promise<Buffer> {
  const dir = tempDir();
  const src = join(dir, "src");
  let deep = join(src, "deep");
  for (let i = 0; i < 11; i++) deep = join(deep, `d${i}`);
  mkdirSync(deep, { recursive: true });
  writeFileSync(join(deep, "f.txt"), "deep\n");
  writeFileSync(join(src, `${"n".repeat(240)}.txt`), "long name\n");
  symlinkSync(`${"/target".repeat(60)}`, join(src, "link"));
  writeFileSync(join(src, "boot.bin"), Buffer.alloc(4096, 7));
  const out = join(dir, "sample.iso");
  const sink = await FileSink.open(out, { create: true, truncate: true });
  await buildIso(sink, { sources: [src], volumeId: "FUZZ", biosBoot: { path: join(src, "boot.bin") }, sourceDateEpoch: 1 });
  await sink.close();
  return readFileSync(out);
}

/** xorshift32: the same mutations every run. */
function prng(seed: number): () => number {
  let x = seed;
  return () => {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    return x;
  };
}

/** Open, walk (depth-bounded: a corrupt image can make a folder its own child) and read every file. */
async function exercise(image: Buffer): Promise<void> {
  const fs = await openIso9660(new MemorySource(image, 2048, "fuzzed.iso"));
  const walk = async (dir: IsoNode, depth: number): Promise<void> => {
    if (depth > 24) return;
    for (const e of await fs.list(dir)) {
      if (e.node.stat.type === "dir") await walk(e.node, depth + 1);
      else if (e.node.stat.type === "symlink") await fs.readlink(e.node);
      else if (e.node.stat.type === "file") await fs.read(e.node, 0, Math.min(e.node.stat.size, 1 << 16));
    }
  };
  await walk(await fs.root(), 0);
}

test("the reader survives truncated and bit-flipped images with only PlatterErrors (no hang, crash or RangeError)", async () => {
  const image = await sampleImage();
  await exercise(image);
  // Flip bits where the structures are: non-zero bytes from the descriptors up to the first file data.
  const metadataEnd = Math.min(image.length, 80 * 2048);
  const targets: number[] = [];
  for (let o = 16 * 2048; o < metadataEnd; o++) if (image[o] !== 0) targets.push(o);
  const next = prng(0x15015);
  let failures = 0;
  const cases: Buffer[] = [];
  for (let i = 0; i < 60; i++) cases.push(image.subarray(0, next() % image.length));
  for (let i = 0; i < 800; i++) {
    const copy = Buffer.from(image);
    const flips = 1 + (next() % 8);
    for (let f = 0; f < flips; f++) copy[targets[next() % targets.length]] ^= 1 << (next() % 8);
    cases.push(copy);
  }
  for (const [i, c] of cases.entries()) {
    try {
      await exercise(c);
    } catch (err) {
      if (!(err instanceof PlatterError)) {
        assert.fail(`case ${i}: ${(err as Error)?.constructor?.name}: ${(err as Error)?.stack}`);
      }
      failures++;
    }
  }
  assert.ok(failures > 0, "no mutation was ever noticed");
});
