/**
 * Reading a compressed image (.zst frames, .xz blocks, .gz members) front
 * to back the way convert, hash and restore do: several large reads in
 * flight, each covering whole frames (decoded straight into the reader's
 * buffer) and parts of frames (decoded through the frame cache). The bytes
 * are the ones `zstd -dc` / `xz -dc` / `gzip -dc` give, across every frame
 * boundary, and a damaged frame or member in the middle is still reported
 * at its offset.
 */
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { before, describe, test } from "node:test";
import { gzipFormat, gzipWriter } from "../../src/container/gzip/index.js";
import { xzFormat, xzWriter } from "../../src/container/xz/index.js";
import { zstdFormat, zstdWriter } from "../../src/container/zstd/index.js";
import { FRAME_SIZE } from "../../src/container/zstd/writer.js";
import { CorruptImageError } from "../../src/errors.js";
import type { BlockSource } from "../../src/io/block-source.js";
import { MemorySource } from "../../src/io/memory-source.js";
import { needs } from "../helpers/env.js";
import { run, sh } from "../helpers/run.js";
import { tempDir } from "../helpers/tmp.js";
import { mixedImage, writeAll } from "./zstd-xz-compare.js";

const MiB = 1 << 20;
const noRelated = { openRelated: async () => assert.fail("no related file") };

/**
 * Read all of `source` in `chunk`-byte reads from `start`, `inFlight` at once
 * (as convert's read-ahead does): the bytes, or, per read, the error it met.
 */
async function readAhead(source: BlockSource, chunk: number, inFlight: number, start = 0): Promise<Array<{ offset: number; bytes?: Buffer; error?: unknown }>> {
  const reads: Array<Promise<{ offset: number; bytes?: Buffer; error?: unknown }>> = [];
  const results: Array<{ offset: number; bytes?: Buffer; error?: unknown }> = [];
  for (let at = start; at < source.size; at += chunk) {
    const offset = at;
    if (reads.length >= inFlight) results.push(await (reads.shift() as (typeof reads)[number]));
    reads.push(
      source.read(offset, Math.min(chunk, source.size - offset), Buffer.allocUnsafe(Math.min(chunk, source.size - offset))).then(
        (bytes) => ({ offset, bytes }),
        (error: unknown) => ({ offset, error }),
      ),
    );
  }
  for (const r of reads) results.push(await r);
  return results;
}

function joined(results: Array<{ bytes?: Buffer; error?: unknown }>): Buffer {
  for (const r of results) if (r.error) throw r.error;
  return Buffer.concat(results.map((r) => r.bytes as Buffer));
}

describe("compressed images read front to back with reads in flight", { skip: needs("zstd", "xz", "gzip") }, () => {
  const dir = tempDir();
  const data = mixedImage();
  let zst = Buffer.alloc(0);
  let xz = Buffer.alloc(0);
  let zstdOut = Buffer.alloc(0);
  let xzOut = Buffer.alloc(0);
  let gz = Buffer.alloc(0);
  let gzipOut = Buffer.alloc(0);
  before(async () => {
    for (const [writer, name] of [
      [zstdWriter, "image.zst"],
      [xzWriter, "image.xz"],
      [gzipWriter, "image.gz"],
    ] as const) {
      const sink = await writer.create(join(dir, name), { size: data.length });
      await writeAll(sink, data);
      await sink.setSize(data.length);
      await sink.close();
    }
    zst = readFileSync(join(dir, "image.zst"));
    xz = readFileSync(join(dir, "image.xz"));
    await sh(`zstd -dc '${join(dir, "image.zst")}' > '${join(dir, "zstd.out")}'`);
    await sh(`xz -dc '${join(dir, "image.xz")}' > '${join(dir, "xz.out")}'`);
    await sh(`gzip -dc '${join(dir, "image.gz")}' > '${join(dir, "gzip.out")}'`);
    zstdOut = readFileSync(join(dir, "zstd.out"));
    xzOut = readFileSync(join(dir, "xz.out"));
    gzipOut = readFileSync(join(dir, "gzip.out"));
    gz = readFileSync(join(dir, "image.gz"));
    assert.ok(zstdOut.equals(data) && xzOut.equals(data) && gzipOut.equals(data), "the tools decode what was written");
  });

  // Whole-frame reads (every frame straight into the reader's buffer), reads that cut frames, reads smaller than a frame.
  const shapes: Array<[number, number, number, string]> = [
    [4 * MiB, 4, 0, "4 MiB reads, 4 in flight, on frame boundaries"],
    [3 * MiB + 4096, 4, 0, "3 MiB + 4 KiB reads, 4 in flight, cutting frames"],
    [4 * MiB, 2, MiB / 2, "4 MiB reads from half a frame in"],
    [256 << 10, 8, 0, "256 KiB reads, 8 in flight (frames decoded ahead into the cache)"],
    [4 * MiB + 512, 1, 0, "one read at a time"],
  ];
  for (const [chunk, inFlight, start, what] of shapes) {
    test(`.zst: ${what}: the bytes zstd -dc gives`, async () => {
      const source = await zstdFormat.open(new MemorySource(zst, 512, "image.zst"), noRelated);
      try {
        assert.ok(joined(await readAhead(source, chunk, inFlight, start)).equals(zstdOut.subarray(start)));
      } finally {
        await source.close();
      }
    });
  }

  test(".xz: 8 MiB reads (two whole blocks) and 5 MiB reads, 3 in flight: the bytes xz -dc gives", async () => {
    for (const chunk of [8 * MiB, 5 * MiB]) {
      const source = await xzFormat.open(new MemorySource(xz, 512, "image.xz"), noRelated);
      try {
        assert.ok(joined(await readAhead(source, chunk, 3)).equals(xzOut), `${chunk}-byte reads`);
      } finally {
        await source.close();
      }
    }
  });

  test(".zst with frame 7 damaged: reads in flight before it return zstd -dc's bytes, the read holding it fails naming its offset, later reads still read", async () => {
    const count = zst.readUInt32LE(zst.length - 9);
    const tableStart = zst.length - (8 + count * 12 + 9);
    let at = 0;
    for (let i = 0; i < 6; i++) at += zst.readUInt32LE(tableStart + 8 + i * 12);
    const size = zst.readUInt32LE(tableStart + 8 + 6 * 12);
    const damaged = Buffer.from(zst);
    damaged[at + (size >> 1)] ^= 0x10;
    writeFileSync(join(dir, "damaged.zst"), damaged);
    const zstdSays = await run("zstd", ["-t", join(dir, "damaged.zst")]);
    assert.notEqual(zstdSays.code, 0, "zstd -t finds the damage too");
    const source = await zstdFormat.open(new MemorySource(damaged, 512, "damaged.zst"), noRelated);
    try {
      const results = await readAhead(source, 2 * FRAME_SIZE, 4);
      for (const r of results) {
        const holdsFrame7 = r.offset <= 6 * FRAME_SIZE && 6 * FRAME_SIZE < r.offset + 2 * FRAME_SIZE;
        if (holdsFrame7) {
          assert.ok(r.error instanceof CorruptImageError, `the read at ${r.offset} fails`);
          assert.match(r.error.message, new RegExp(`^damaged\\.zst: corrupt zstd frame at offset ${at}: `));
        } else assert.ok(r.bytes?.equals(data.subarray(r.offset, r.offset + r.bytes.length)), `the read at ${r.offset}`);
      }
    } finally {
      await source.close();
    }
  });

  test(".gz: 4 MiB reads (16 whole members each), 3 MiB + 4 KiB reads and 100 KiB reads, in flight: the bytes gzip -dc gives", async () => {
    for (const [chunk, inFlight] of [
      [4 * MiB, 4],
      [3 * MiB + 4096, 3],
      [100 << 10, 8],
    ] as const) {
      const source = await gzipFormat.open(new MemorySource(gz, 512, "image.gz"), noRelated);
      try {
        assert.ok(joined(await readAhead(source, chunk, inFlight)).equals(gzipOut), `${chunk}-byte reads`);
      } finally {
        await source.close();
      }
    }
  });

  test(".gz with member 9 damaged: gzip -t fails too; the read holding it fails naming its offset, the others return gzip -dc's bytes", async () => {
    const member = 256 << 10;
    let at = 0;
    for (let m = 0; m < 8; m++) at += gz.readUInt32LE(at + 16);
    const damaged = Buffer.from(gz);
    damaged[at + (gz.readUInt32LE(at + 16) >> 1)] ^= 0x10;
    writeFileSync(join(dir, "damaged.gz"), damaged);
    assert.notEqual((await run("gzip", ["-t", join(dir, "damaged.gz")])).code, 0, "gzip -t finds the damage too");
    const source = await gzipFormat.open(new MemorySource(damaged, 512, "damaged.gz"), noRelated);
    try {
      for (const r of await readAhead(source, MiB, 4)) {
        if (r.offset <= 8 * member && 8 * member < r.offset + MiB) {
          assert.ok(r.error instanceof CorruptImageError, `the read at ${r.offset} fails`);
          assert.match(r.error.message, new RegExp(`^damaged\\.gz: gzip data at offset ${at} \\(image offset ${8 * member}\\): `));
        } else assert.ok(r.bytes?.equals(gzipOut.subarray(r.offset, r.offset + r.bytes.length)), `the read at ${r.offset}`);
      }
    } finally {
      await source.close();
    }
  });

  test(".gz of 300 spans read in one call (more inflates than koffi lets wait at once, 256): the bytes gzip -dc gives", async () => {
    const line = Buffer.from("2026-11-30T12:00:00 host3 kernel: sector 12345 read ok\n");
    const big = Buffer.alloc(300 * (256 << 10));
    for (let at = 0; at < big.length; at += line.length) line.copy(big, at);
    const path = join(dir, "many-members.gz");
    const sink = await gzipWriter.create(path, { size: big.length, level: 1 });
    await writeAll(sink, big);
    await sink.setSize(big.length);
    await sink.close();
    const theirs = (await run("bash", ["-c", `gzip -dc '${path}' | sha256sum`])).stdout.split(" ")[0];
    const source = await gzipFormat.open(new MemorySource(readFileSync(path), 512, "many-members.gz"), noRelated);
    try {
      assert.ok(Number(source.describe().accessPoints) > 256, "more spans than koffi's queue");
      assert.equal(createHash("sha256").update(await source.read(0, source.size)).digest("hex"), theirs);
    } finally {
      await source.close();
    }
  });
});
