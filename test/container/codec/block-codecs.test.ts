import assert from "node:assert/strict";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, test } from "node:test";
import { decompressBlock as lz4, decompressLz4Block } from "../../../src/container/codec/lz4-block.js";
import type { BlockDecompressor } from "../../../src/container/codec/types.js";
import { decompressBlock as xz } from "../../../src/container/codec/xz-block.js";
import { decompressBlock as zlib } from "../../../src/container/codec/zlib-block.js";
import { decompressBlock as zstd } from "../../../src/container/codec/zstd-block.js";
import { CorruptImageError } from "../../../src/errors.js";
import { needs } from "../../helpers/env.js";
import { nodeWithPeak } from "../../helpers/peak-rss.js";
import { sh } from "../../helpers/run.js";
import { tempDir } from "../../helpers/tmp.js";

/**
 * A hostile zstd frame: no content size, the window descriptor `windowByte`,
 * then `blocks` RLE blocks that each turn 4 bytes into `blockSize` bytes.
 * 4 KiB of it asks a naive decoder for gigabytes.
 */
function zstdBomb(windowByte: number, blocks: number, blockSize = (1 << 21) - 1): Buffer {
  const parts = [Buffer.from([0x28, 0xb5, 0x2f, 0xfd, 0x00, windowByte])];
  for (let i = 0; i < blocks; i++) {
    const word = (i === blocks - 1 ? 1 : 0) | (1 << 1) | (blockSize << 3); // last?, RLE, its size
    parts.push(Buffer.from([word & 0xff, (word >> 8) & 0xff, word >> 16, 0x41]));
  }
  return Buffer.concat(parts);
}

/** Decode `input` in a child process with `decompressBlock` of `codec`; what it threw, and its peak memory. */
async function decodeInChild(codec: string, input: Buffer, maxSize: number, maxWindow: number) {
  const dir = tempDir();
  writeFileSync(join(dir, "input"), input);
  const script = join(dir, "decode.mts");
  const module = new URL(`../../../src/container/codec/${codec}-block.ts`, import.meta.url).pathname;
  writeFileSync(
    script,
    `import { readFileSync } from "node:fs";
import { decompressBlock } from ${JSON.stringify(module)};
const input = readFileSync(${JSON.stringify(join(dir, "input"))});
const out = await decompressBlock(input, ${maxSize}, ${maxWindow}).then((b) => "decoded " + b.length, (e) => e.name + ": " + e.message);
process.stdout.write(out);
`,
  );
  const r = await nodeWithPeak(["--import", "tsx", script]);
  assert.equal(r.code, 0, r.stderr);
  return { outcome: r.stdout, peakMiB: r.peakMiB };
}

/** 256 KiB: text, a repeated short pattern (overlapping matches), random bytes, zeros. */
function sample(): Buffer {
  const text = Buffer.from(Array.from({ length: 6000 }, (_, i) => `line ${i} of the sample\n`).join(""));
  const pattern = Buffer.alloc(40000, "abcabcab");
  let x = 0x2545f491;
  const random = Buffer.alloc(50000);
  for (let i = 0; i < random.length; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    random[i] = x & 0xff;
  }
  return Buffer.concat([text, pattern, random, Buffer.alloc(32768)]).subarray(0, 262144);
}

/** The raw blocks inside an LZ4 frame (lz4 CLI output, independent blocks, no checksums): [compressed?, bytes]. */
function lz4FrameBlocks(frame: Buffer): Array<[boolean, Buffer]> {
  assert.equal(frame.readUInt32LE(0), 0x184d2204, "lz4 frame magic");
  const flags = frame[4] as number;
  let at = 6 + (flags & 0x08 ? 8 : 0) + (flags & 0x01 ? 4 : 0) + 1;
  const blocks: Array<[boolean, Buffer]> = [];
  for (;;) {
    const word = frame.readUInt32LE(at);
    at += 4;
    if (word === 0) break;
    const size = word & 0x7fffffff;
    blocks.push([(word & 0x80000000) === 0, frame.subarray(at, at + size)]);
    at += size + (flags & 0x10 ? 4 : 0);
  }
  return blocks;
}

async function corruptionIsClean(decompress: BlockDecompressor, packed: Buffer, maxSize: number) {
  let clean = 0;
  for (let i = 0; i < 300; i++) {
    const copy = Buffer.from(packed);
    const at = (i * 7919) % copy.length;
    copy[at] = (copy[at] as number) ^ (1 << (i % 8));
    try {
      const out = await decompress(copy, maxSize);
      assert.ok(out.length <= maxSize);
    } catch (err) {
      assert.ok(err instanceof CorruptImageError, `bit flip at ${at}: ${String(err)}`);
      clean++;
    }
  }
  await assert.rejects(decompress(packed.subarray(0, packed.length >> 1), maxSize), CorruptImageError);
  return clean;
}

describe("block decompressors", () => {
  test("lz4 block decoder reads the blocks the lz4 CLI writes (fast and -9, 64 KiB blocks)", { skip: needs("lz4") }, async () => {
    const dir = tempDir();
    const input = sample();
    writeFileSync(join(dir, "in"), input);
    for (const level of ["-1", "-9"]) {
      await sh(`lz4 -q -f ${level} -B4 -BI --no-frame-crc ${dir}/in ${dir}/out.lz4`);
      const blocks = lz4FrameBlocks(readFileSync(join(dir, "out.lz4")));
      const out = Buffer.concat(blocks.map(([compressed, bytes]) => (compressed ? decompressLz4Block(bytes, 65536) : bytes)));
      assert.ok(out.equals(input), `lz4 ${level}`);
      assert.ok(blocks.some(([compressed]) => compressed));
      const first = blocks.find(([compressed]) => compressed)?.[1] as Buffer;
      await corruptionIsClean(lz4, first, 65536);
      await assert.rejects(lz4(first, 100), /expands to more than 100 bytes/);
    }
  });

  test("lz4 block decoder: a match reaching before the start is corrupt", async () => {
    // token: 1 literal, match length 4; literal "a"; offset 2 (only 1 byte written so far)
    await assert.rejects(lz4(Buffer.from([0x10, 0x61, 0x02, 0x00]), 100), /points before the start/);
    assert.deepEqual(decompressLz4Block(Buffer.from([0x10, 0x61, 0x01, 0x00, 0x10, 0x62]), 100).toString(), "aaaaab");
  });

  test("zlib blocks from pigz -z (what squashfs calls gzip) decode; bad ones are CorruptImageError", { skip: needs("pigz") }, async () => {
    const dir = tempDir();
    writeFileSync(join(dir, "in"), sample());
    await sh(`pigz -z -c ${dir}/in > ${dir}/in.zz`);
    const packed = readFileSync(join(dir, "in.zz"));
    assert.ok((await zlib(packed, 262144)).equals(sample()));
    await assert.rejects(zlib(packed, 262143), /expands to more than 262143 bytes/);
    await corruptionIsClean(zlib, packed, 262144);
  });

  test("xz streams from xz --check=crc32 (as mksquashfs writes them) decode; bad ones are CorruptImageError", { skip: needs("xz") }, async () => {
    const dir = tempDir();
    writeFileSync(join(dir, "in"), sample());
    await sh(`xz --check=crc32 --lzma2=dict=256KiB -c ${dir}/in > ${dir}/in.xz`); // mksquashfs: the dictionary is the block size
    const packed = readFileSync(join(dir, "in.xz"));
    assert.ok((await xz(packed, 262144)).equals(sample()));
    await assert.rejects(xz(packed, 100000, 262144), /expands to more than 100000 bytes/);
    await corruptionIsClean(xz, packed, 262144);
  });

  test("zstd frames from the zstd CLI decode; a frame declaring too much is refused before decoding", { skip: needs("zstd") }, async () => {
    const dir = tempDir();
    writeFileSync(join(dir, "in"), sample());
    await sh(`zstd -q -19 -c ${dir}/in > ${dir}/in.zst`);
    const packed = readFileSync(join(dir, "in.zst"));
    assert.ok((await zstd(packed, 262144)).equals(sample()));
    await assert.rejects(zstd(packed, 1000), /expands to more than 1000 bytes/);
    await corruptionIsClean(zstd, packed, 262144);
  });

  test("a zstd frame declaring a 1.9 GiB window is refused before decoding, in a few MiB", async () => {
    const bomb = zstdBomb((20 << 3) | 7, 64); // 2^30 + 7/8 * 2^30 bytes of window; 128 MiB of RLE
    const { outcome, peakMiB } = await decodeInChild("zstd", bomb, 131072, 131072);
    assert.equal(outcome, "CorruptImageError: corrupt zstd block: its window of 2013265920 bytes is larger than 131072");
    assert.ok(peakMiB < 150, `peak RSS ${peakMiB.toFixed(0)} MiB`);
  });

  test("a zstd frame with a small window and no content size stops at maxSize, in a few MiB", async () => {
    const bomb = zstdBomb(7 << 3, 4096, 131072); // a 128 KiB window passes the header check; 512 MiB of RLE blocks
    const { outcome, peakMiB } = await decodeInChild("zstd", bomb, 131072, 131072);
    assert.match(outcome, /^CorruptImageError: corrupt zstd block: /);
    assert.ok(peakMiB < 150, `peak RSS ${peakMiB.toFixed(0)} MiB`);
  });

  test("zstd CLI frames without a content size decode within bounds; a window over maxWindow is refused", { skip: needs("zstd") }, async () => {
    const dir = tempDir();
    writeFileSync(join(dir, "in"), sample());
    await sh(`zstd -q -19 --zstd=wlog=18 --no-content-size -c < ${dir}/in > ${dir}/in.zst`);
    const packed = readFileSync(join(dir, "in.zst"));
    assert.equal((packed[4] as number) >> 6, 0, "no content size in the header");
    assert.ok((await zstd(packed, 262144, 1 << 20)).equals(sample()));
    await assert.rejects(zstd(packed, 262143, 1 << 20), CorruptImageError);
    await assert.rejects(zstd(packed, 262144, 4096), /its window of \d+ bytes is larger than 4096/);
  });

  test("xz streams whose LZMA2 dictionary is over maxWindow are refused before decoding (xz --lzma2=dict=64MiB)", { skip: needs("xz") }, async () => {
    const dir = tempDir();
    writeFileSync(join(dir, "in"), sample());
    await sh(`xz --check=crc32 --lzma2=dict=64MiB -c ${dir}/in > ${dir}/in.xz`);
    const packed = readFileSync(join(dir, "in.xz"));
    await assert.rejects(xz(packed, 262144, 1 << 20), /corrupt xz block: its dictionary of 67108864 bytes is larger than 1048576/);
    assert.ok((await xz(packed, 262144, 64 << 20)).equals(sample()));
    const { outcome, peakMiB } = await decodeInChild("xz", packed, 262144, 131072);
    assert.match(outcome, /^CorruptImageError: corrupt xz block: its dictionary/);
    assert.ok(peakMiB < 150, `peak RSS ${peakMiB.toFixed(0)} MiB`);
  });
});
