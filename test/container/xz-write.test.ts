/**
 * What platter writes as .xz: xz accepts it (xz -t, -d, -d -T0), xz -l shows
 * one stream of many blocks with their sizes in their headers, platter seeks
 * in it by block, and an interrupted file resumes from its last whole block.
 */
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, test } from "node:test";
import { xzFormat, xzWriter } from "../../src/container/xz/index.js";
import { BLOCK_SIZE } from "../../src/container/xz/writer.js";
import { UsageError } from "../../src/errors.js";
import { FileSource } from "../../src/io/file-source.js";
import { needs } from "../helpers/env.js";
import { fixture } from "../helpers/fixtures.js";
import { platter, run, sh } from "../helpers/run.js";
import { tempDir } from "../helpers/tmp.js";
import { assertSameDisk, mixedImage, sourceSha256, writeAll } from "./zstd-xz-compare.js";

const MiB = 1 << 20;
const noRelated = { openRelated: async () => assert.fail("xz names no related file") };
const sha256 = (b: Buffer) => createHash("sha256").update(b).digest("hex");

/** xz --robot -lvv's lines for the blocks: [compressed offset, uncompressed offset, total size, uncompressed size, check, check value, header size, header flags, compressed size, memory, filters]. */
async function xzBlocks(path: string): Promise<string[][]> {
  const r = await run("xz", ["--robot", "-lvv", path]);
  assert.equal(r.code, 0, r.stderr);
  return r.stdout
    .split("\n")
    .filter((l) => l.startsWith("block\t"))
    .map((l) => l.split("\t"));
}

describe("platter's .xz output", { skip: needs("xz") }, () => {
  const dir = tempDir();
  const data = mixedImage();
  const path = join(dir, "mixed.xz");

  test("xz -t accepts it; xz -d and xz -d -T0 give the image back", async () => {
    const sink = await xzWriter.create(path, { level: 1, threads: 3 });
    await writeAll(sink, data);
    await sink.close();
    assert.equal((await run("xz", ["-t", path])).code, 0);
    for (const threads of ["-T1", "-T0"]) {
      const r = await run("bash", ["-c", `xz -dc ${threads} '${path}' | sha256sum`]);
      assert.equal(r.stdout.split(" ")[0], sha256(data), threads);
    }
  });

  test("xz -l shows one stream of many blocks, each of BLOCK_SIZE bytes but the last, with its sizes in its header", async () => {
    const list = await run("xz", ["--robot", "-l", path]);
    const totals = list.stdout.split("\n").find((l) => l.startsWith("totals"))?.split("\t") ?? [];
    const count = Math.ceil(data.length / BLOCK_SIZE);
    assert.deepEqual([totals[1], totals[2]], ["1", String(count)]);
    const blocks = await xzBlocks(path);
    assert.equal(blocks.length, count);
    for (const [i, b] of blocks.entries()) {
      assert.equal(Number(b[5]), i * BLOCK_SIZE, "uncompressed offset");
      assert.equal(Number(b[7]), Math.min(BLOCK_SIZE, data.length - i * BLOCK_SIZE), "uncompressed size");
      assert.equal(b[12], "cu", "compressed and uncompressed sizes in the block header");
      assert.equal(b[9], "CRC64");
    }
  });

  test("platter reads it back by block, as the image", async () => {
    const file = await FileSource.open(path);
    const decoded = await xzFormat.open(file, noRelated);
    try {
      assert.equal(decoded.seekable, true);
      assert.equal(await sourceSha256(decoded, 1_000_003), sha256(data));
      for (const at of [data.length - 10, 0, BLOCK_SIZE - 5, 7 * MiB + 3, 12 * MiB]) {
        assert.ok((await decoded.read(at, 10)).equals(data.subarray(at, at + 10)), `at ${at}`);
      }
    } finally {
      await decoded.close();
      await file.close();
    }
  });

  test("zero runs cost no compression: every zero block is the same bytes", async () => {
    const zeros = join(dir, "zeros.xz");
    const sink = await xzWriter.create(zeros, {});
    await sink.write(0, Buffer.alloc(5 * MiB));
    await sink.writeZeros(5 * MiB, 59 * MiB + 5);
    await sink.close();
    const blocks = await xzBlocks(zeros);
    assert.equal(blocks.length, 17);
    assert.equal(new Set(blocks.map((b) => `${b[6]}/${b[10]}`)).size, 2, "one zero block (size and check), and the last shorter one");
    assert.ok(readFileSync(zeros).length < 32 << 10);
    assert.equal((await run("bash", ["-c", `xz -dc '${zeros}' | cmp - <(head -c ${64 * MiB + 5} /dev/zero) && echo same`])).stdout.trim(), "same");
  });

  test("the default is xz's -6 (its dictionary capped at the block size); the output does not depend on threads; levels are 0-9", async () => {
    const small = data.subarray(0, 6 * MiB);
    const outputs: Buffer[] = [];
    for (const threads of [1, 2]) {
      const p = join(dir, `t${threads}.xz`);
      const sink = await xzWriter.create(p, { threads });
      await writeAll(sink, small, 0, threads * MiB + 1);
      await sink.close();
      outputs.push(readFileSync(p));
    }
    assert.ok((outputs[0] as Buffer).equals(outputs[1] as Buffer));
    const blocks = await xzBlocks(join(dir, "t1.xz"));
    assert.equal(blocks[0]?.[15], "--lzma2=dict=4MiB");
    const reference = await run("bash", ["-c", `xz -dc '${join(dir, "t1.xz")}' | head -c ${BLOCK_SIZE} | xz -T1 --lzma2=preset=6,dict=4MiB -c | wc -c`]);
    assert.ok(Math.abs(Number(blocks[0]?.[6]) - Number(reference.stdout)) < 256, `block 1 is the size xz -6 makes of it (${blocks[0]?.[6]} vs ${reference.stdout.trim()})`);
    await assert.rejects(xzWriter.create(join(dir, "bad.xz"), { level: 10 }), (err: unknown) => err instanceof UsageError && /--level 10: xz levels go from 0 to 9/.test(err.message));
  });
});

describe("resuming an interrupted .xz", { skip: needs("xz") }, () => {
  const dir = tempDir();
  const data = mixedImage();
  const whole = join(dir, "whole.xz");

  test("cut anywhere (inside a block, at a block's end, inside the index), it resumes from its last whole block and ends as the uninterrupted file", async () => {
    const sink = await xzWriter.create(whole, { level: 1 });
    await writeAll(sink, data);
    await sink.close();
    const file = readFileSync(whole);
    const blocks = (await xzBlocks(whole)).map((b) => ({ offset: Number(b[4]), total: Number(b[6]) }));
    const end = (i: number) => (blocks[i] as { offset: number; total: number }).offset + (blocks[i] as { total: number }).total;
    const cuts: Array<[number, number]> = [
      [end(1), 2], // exactly after block 2
      [(blocks[1] as { offset: number }).offset + 1000, 1], // inside block 2
      [(blocks[3] as { offset: number }).offset + 5, 3], // inside block 4's header
      [end(blocks.length - 1) + 3, blocks.length], // inside the index
      [file.length - 4, blocks.length], // inside the footer
      [file.length, blocks.length], // finished
      [7, 0], // inside the stream header
    ];
    for (const [cut, wholeBlocks] of cuts) {
      const p = join(dir, `cut-${cut}.xz`);
      writeFileSync(p, file.subarray(0, cut));
      const { sink: resumed, committed } = (await xzWriter.resume?.(p, { level: 1 })) ?? assert.fail("xz resumes");
      assert.equal(committed, Math.min(data.length, wholeBlocks * BLOCK_SIZE), `cut at ${cut}: ${wholeBlocks} whole blocks`);
      await writeAll(resumed, data, committed);
      await resumed.close();
      assert.ok(readFileSync(p).equals(file), `cut at ${cut}: the finished file is the uninterrupted one`);
    }
  });

  test("a last block whose bytes are damaged is dropped, not trusted", async () => {
    const file = readFileSync(whole);
    const blocks = (await xzBlocks(whole)).map((b) => ({ offset: Number(b[4]), total: Number(b[6]) }));
    const b2 = blocks[2] as { offset: number; total: number };
    const damaged = Buffer.from(file.subarray(0, b2.offset + b2.total));
    damaged[b2.offset + 200] ^= 0x55;
    const p = join(dir, "damaged.xz");
    writeFileSync(p, damaged);
    const { sink, committed } = (await xzWriter.resume?.(p, { level: 1 })) ?? assert.fail();
    assert.equal(committed, 2 * BLOCK_SIZE);
    await sink.close();
    assert.equal((await run("xz", ["-t", p])).code, 0);
  });

  test("an .xz platter did not write (no sizes in its block headers) is not resumed", async () => {
    const p = join(dir, "foreign.xz");
    await sh(`head -c 3000000 /dev/urandom | xz -1 -T1 --block-size=1MiB -c | head -c 2000000 > '${p}'`);
    await assert.rejects(xzWriter.resume?.(p, {}) ?? Promise.resolve(), /cannot resume writing it: the block at offset 12 does not record its sizes; only an \.xz platter was writing can be resumed/);
  });
});

describe("platter convert to .xz", { skip: needs("xz", "sfdisk", "mkfs.ext4", "mkfs.vfat", "mcopy") }, () => {
  test("convert mbr.img mbr.xz: xz -t accepts it, xz -l shows 16 blocks, it reads as the disk", async () => {
    const raw = await fixture("make-mbr-image.sh", "mbr.img");
    const dir = tempDir();
    const xz = join(dir, "mbr.xz");
    const r = await platter(["convert", raw, xz]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal((await run("xz", ["-t", xz])).code, 0);
    assert.equal((await xzBlocks(xz)).length, 16);
    const file = await FileSource.open(xz);
    const decoded = await xzFormat.open(file, noRelated);
    await assertSameDisk(decoded, raw);
    await decoded.close();
    await file.close();
  });
});
