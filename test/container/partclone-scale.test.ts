/**
 * A partclone image of a 1 TiB filesystem with four used blocks, written
 * sparse (its 32 MiB bitmap is mostly a hole): the bitmap is larger than
 * the piece cache, so ranks are taken over evicted pieces; convert writes
 * the four blocks and nothing else, in bounded memory. partclone.chkimg
 * finds the image sound and partclone.restore restores the same four blocks, and qemu-img finds the qcow2
 * platter writes clean, with data only where those blocks are.
 */
import assert from "node:assert/strict";
import { closeSync, openSync, readSync, writeFileSync, writeSync } from "node:fs";
import { join } from "node:path";
import { before, describe, test } from "node:test";
import { partcloneCrc32 } from "../../src/container/partclone/checksum.js";
import { encodePartcloneHeader } from "../../src/container/partclone/header.js";
import { openImage } from "../../src/image/open-image.js";
import { needs } from "../helpers/env.js";
import { nodeWithPeak } from "../helpers/peak-rss.js";
import { CLI, run } from "../helpers/run.js";
import { tempDir } from "../helpers/tmp.js";

const BLOCK = 4096;
const TOTAL = 2 ** 28;
const USED = [0, 1, 2 ** 27 + 5, TOTAL - 1];
const BITMAP_AT = 110;
const BITMAP_BYTES = TOTAL / 8;

function blockBytes(n: number): Buffer {
  return Buffer.from(`block ${n} `.repeat(BLOCK).slice(0, BLOCK));
}

/** The image, written piece by piece so that the zeros of the bitmap stay a hole. */
function writeImage(path: string): void {
  const header = encodePartcloneHeader({
    imageVersion: 2, partcloneVersion: "0.3.23", filesystem: "EXTFS", deviceSize: TOTAL * BLOCK, totalBlocks: TOTAL,
    usedBlocks: USED.length, superBlockUsedBlocks: USED.length, blockSize: BLOCK, checksum: "crc32", checksumSize: 4,
    blocksPerChecksum: 256, reseedChecksum: true, bitmapMode: "bit", cpuBits: 64, headerSize: BITMAP_AT,
  });
  const fd = openSync(path, "w");
  try {
    writeSync(fd, header, 0, header.length, 0);
    // The bitmap's CRC, 1 MiB at a time, with the used bits set where they fall.
    let crc: number | undefined;
    for (let at = 0; at < BITMAP_BYTES; at += 1 << 20) {
      const chunk = Buffer.alloc(1 << 20);
      for (const b of USED) if (b >> 3 >= at && b >> 3 < at + chunk.length) chunk[(b >> 3) - at] |= 1 << (b & 7);
      crc = partcloneCrc32(chunk, crc);
      if (chunk.some((x) => x !== 0)) writeSync(fd, chunk, 0, chunk.length, BITMAP_AT + at);
    }
    const data = Buffer.concat(USED.map(blockBytes));
    const sums = Buffer.alloc(8);
    sums.writeUInt32LE(crc as number, 0);
    sums.writeUInt32LE(partcloneCrc32(data), 4);
    writeSync(fd, sums, 0, 4, BITMAP_AT + BITMAP_BYTES);
    writeSync(fd, data, 0, data.length, BITMAP_AT + BITMAP_BYTES + 4);
    writeSync(fd, sums, 4, 4, BITMAP_AT + BITMAP_BYTES + 4 + data.length);
  } finally {
    closeSync(fd);
  }
}

describe("a 1 TiB filesystem with four used blocks, in a sparse partclone image", () => {
  const dir = tempDir();
  const image = join(dir, "huge.ptcl");
  before(() => writeImage(image));

  test("the used blocks read back, the free ones as zeros, dataRanges says which", async () => {
    const opened = await openImage(image);
    try {
      const source = opened.source;
      assert.equal(source.size, TOTAL * BLOCK);
      assert.deepEqual(await (source.dataRanges as NonNullable<typeof source.dataRanges>)(0, source.size), [
        [0, 2 * BLOCK],
        [(2 ** 27 + 5) * BLOCK, BLOCK],
        [(TOTAL - 1) * BLOCK, BLOCK],
      ]);
      // From the end backwards and across the middle: ranks over pieces the cache has evicted and read again.
      for (const b of [...USED].reverse()) assert.ok((await source.read(b * BLOCK, BLOCK)).equals(blockBytes(b)), `block ${b}`);
      assert.ok((await source.read((2 ** 27 + 4) * BLOCK, 3 * BLOCK)).equals(Buffer.concat([Buffer.alloc(BLOCK), blockBytes(2 ** 27 + 5), Buffer.alloc(BLOCK)])));
    } finally {
      await opened.close();
    }
  });

  test("partclone.chkimg finds it sound, partclone.restore restores the same four blocks from it", { skip: needs("partclone.chkimg", "partclone.restore") }, async () => {
    const check = await run("partclone.chkimg", ["-s", image, "-L", join(dir, "log")]);
    assert.equal(check.code, 0, check.stderr);
    const restored = join(dir, "restored.raw");
    // Not -W, which insists on 1 TiB of free space: into an existing file, -C for no size check (free blocks are seeked over: sparse).
    writeFileSync(restored, "");
    const r = await run("partclone.restore", ["-s", image, "-O", restored, "-C", "-L", join(dir, "log")]);
    assert.equal(r.code, 0, r.stderr);
    const fd = openSync(restored, "r");
    try {
      for (const b of USED) {
        const theirs = Buffer.alloc(BLOCK);
        readSync(fd, theirs, 0, BLOCK, b * BLOCK);
        assert.ok(theirs.equals(blockBytes(b)), `block ${b}`);
      }
    } finally {
      closeSync(fd);
    }
  });

  test("convert --to qcow2: data only at the used blocks, qemu-img check clean, in bounded memory", { skip: needs("qemu-img") }, async () => {
    const qcow2 = join(dir, "huge.qcow2");
    const r = await nodeWithPeak([CLI, "convert", image, qcow2, "--to", "qcow2", "--quiet"]);
    assert.equal(r.code, 0, r.stderr);
    assert.ok(r.peakMiB < 200, `peak ${r.peakMiB} MiB`);
    assert.equal((await run("qemu-img", ["check", qcow2])).code, 0);
    const map = JSON.parse((await run("qemu-img", ["map", "--output=json", qcow2])).stdout) as Array<{ start: number; length: number; data: boolean }>;
    const data = map.filter((m) => m.data);
    assert.ok(data.length > 0 && data.every((m) => USED.some((b) => b * BLOCK >= m.start && b * BLOCK < m.start + m.length)), JSON.stringify(data));
    const back = await openImage(qcow2);
    try {
      for (const b of USED) assert.ok((await back.source.read(b * BLOCK, BLOCK)).equals(blockBytes(b)), `block ${b}`);
    } finally {
      await back.close();
    }
  });
});
