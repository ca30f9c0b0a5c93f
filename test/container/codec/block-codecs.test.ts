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
import { sh } from "../../helpers/run.js";
import { tempDir } from "../../helpers/tmp.js";

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
    await sh(`xz --check=crc32 -c ${dir}/in > ${dir}/in.xz`);
    const packed = readFileSync(join(dir, "in.xz"));
    assert.ok((await xz(packed, 262144)).equals(sample()));
    await assert.rejects(xz(packed, 100000), /expands to more than 100000 bytes/);
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
});
