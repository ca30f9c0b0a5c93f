/**
 * What platter writes as .zst: the zstd tool accepts it (zstd -t, -d, -l),
 * it ends with a seek table whose fields describe its frames, each frame
 * decodes on its own, and an interrupted file resumes from its last whole
 * frame.
 */
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { readFileSync, truncateSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, test } from "node:test";
import { zstdFormat, zstdWriter } from "../../src/container/zstd/index.js";
import { FRAME_SIZE } from "../../src/container/zstd/writer.js";
import { UsageError } from "../../src/errors.js";
import { FileSource } from "../../src/io/file-source.js";
import { needs } from "../helpers/env.js";
import { fixture } from "../helpers/fixtures.js";
import { platter, run, sh } from "../helpers/run.js";
import { tempDir } from "../helpers/tmp.js";
import { assertSameDisk, mixedImage, sourceSha256, writeAll } from "./zstd-xz-compare.js";

const MiB = 1 << 20;
const noRelated = { openRelated: async () => assert.fail("zstd names no related file") };

const sha256 = (b: Buffer) => createHash("sha256").update(b).digest("hex");

/** The seek table at the end of `file`, parsed here from the format's description, not by platter's decoder. */
function parseSeekTable(file: Buffer): { frames: Array<{ c: number; d: number; sum: number }>; descriptor: number; tableStart: number } {
  assert.equal(file.readUInt32LE(file.length - 4), 0x8f92eab1, "Seekable_Magic_Number ends the file");
  const count = file.readUInt32LE(file.length - 9);
  const descriptor = file[file.length - 5] as number;
  const entrySize = descriptor & 0x80 ? 12 : 8;
  const tableStart = file.length - (8 + count * entrySize + 9);
  assert.equal(file.readUInt32LE(tableStart), 0x184d2a5e, "the table is a skippable frame");
  assert.equal(file.readUInt32LE(tableStart + 4), count * entrySize + 9, "Frame_Size");
  const frames = Array.from({ length: count }, (_, i) => {
    const at = tableStart + 8 + i * entrySize;
    return { c: file.readUInt32LE(at), d: file.readUInt32LE(at + 4), sum: entrySize === 12 ? file.readUInt32LE(at + 8) : -1 };
  });
  return { frames, descriptor, tableStart };
}

describe("platter's .zst output", { skip: needs("zstd") }, () => {
  const dir = tempDir();
  const data = mixedImage();
  const path = join(dir, "mixed.zst");

  test("zstd -t accepts it, zstd -d gives the image back, zstd -l counts its frames", async () => {
    const sink = await zstdWriter.create(path, { threads: 3 });
    await writeAll(sink, data);
    await sink.close();
    assert.equal((await run("zstd", ["-q", "-t", path])).code, 0);
    const decoded = await run("bash", ["-c", `zstd -dc '${path}' | sha256sum`]);
    assert.equal(decoded.stdout.split(" ")[0], sha256(data));
    const frames = Math.ceil(data.length / FRAME_SIZE);
    const list = await run("zstd", ["-l", path]);
    assert.match(list.stdout, new RegExp(`^\\s+${frames + 1}\\s+1\\s`, "m"), `${frames} frames and the seek table (a skip):\n${list.stdout}`);
  });

  test("whole frames compressed from the writer's own memory: a buffer reused as soon as write() resolves still reaches the file as written (zstd -d)", async () => {
    const reused = join(dir, "reused.zst");
    const sink = await zstdWriter.create(reused, { threads: 2 });
    const chunk = Buffer.allocUnsafe(4 * MiB);
    // Frame-aligned 4 MiB writes (whole frames) and one that starts mid-frame, from one buffer overwritten after each write.
    const sizes = [4 * MiB, 4 * MiB, MiB / 2, 4 * MiB, 4 * MiB];
    let at = 0;
    for (const size of sizes) {
      data.copy(chunk, 0, at, at + size);
      await sink.write(at, chunk.subarray(0, size));
      chunk.fill(0xee);
      at += size;
    }
    await sink.close();
    const decoded = await run("bash", ["-c", `zstd -dc '${reused}' | sha256sum`]);
    assert.equal(decoded.stdout.split(" ")[0], sha256(data.subarray(0, at)));
  });

  test("it ends with a seek table: checksum flag set, one entry per frame, sizes adding up, each checksum the frame's own", () => {
    const file = readFileSync(path);
    const table = parseSeekTable(file);
    assert.equal(table.descriptor, 0x80);
    assert.equal(table.frames.length, Math.ceil(data.length / FRAME_SIZE));
    assert.equal(table.frames.reduce((n, f) => n + f.c, 0), table.tableStart, "frames end where the table starts");
    assert.equal(table.frames.reduce((n, f) => n + f.d, 0), data.length);
    let at = 0;
    let start = 0;
    for (const f of table.frames.slice(0, -1)) assert.equal(f.d, FRAME_SIZE);
    for (const f of table.frames) {
      const frame = file.subarray(at, at + f.c);
      assert.equal(frame.readUInt32LE(0), 0xfd2fb528, `a zstd frame at ${at}`);
      assert.ok(frame[4] as number & 0x04, "the frame has a content checksum");
      assert.equal(frame.readUInt32LE(f.c - 4), f.sum, "the table's checksum is the frame's (XXH64, low 32 bits, which zstd -t checked)");
      at += f.c;
      start += f.d;
    }
  });

  test("each frame decodes on its own with zstd -d to its slice of the image", async () => {
    const file = readFileSync(path);
    const { frames } = parseSeekTable(file);
    let at = 0;
    let start = 0;
    for (const [i, f] of frames.entries()) {
      if (i % 3 === 1) {
        const one = join(dir, `frame${i}.zst`);
        writeFileSync(one, file.subarray(at, at + f.c));
        const r = await run("bash", ["-c", `zstd -dc '${one}' | sha256sum`]);
        assert.equal(r.stdout.split(" ")[0], sha256(data.subarray(start, start + f.d)), `frame ${i}`);
      }
      at += f.c;
      start += f.d;
    }
  });

  test("zero runs cost no compression: every zero frame is the same bytes, and 64 MiB of zeros take a few KiB", async () => {
    const zeros = join(dir, "zeros.zst");
    const sink = await zstdWriter.create(zeros, {});
    await sink.write(0, Buffer.alloc(3 * MiB)); // zeros handed in as data are found too
    await sink.writeZeros(3 * MiB, 61 * MiB + 5);
    await sink.close();
    const file = readFileSync(zeros);
    const { frames } = parseSeekTable(file);
    assert.equal(frames.length, Math.ceil((64 * MiB + 5) / FRAME_SIZE));
    assert.equal(new Set(frames.map((f) => `${f.c}/${f.sum}`)).size, 2, "one zero frame, and the last shorter one");
    assert.ok(file.length < 8192, `${file.length} bytes`);
    assert.equal((await run("bash", ["-c", `zstd -dc '${zeros}' | cmp - <(head -c ${64 * MiB + 5} /dev/zero) && echo same`])).stdout.trim(), "same");
  });

  test("platter reads it back with random access, as the image", async () => {
    const file = await FileSource.open(path);
    const decoded = await zstdFormat.open(file, noRelated);
    try {
      assert.equal(decoded.seekable, true);
      assert.deepEqual([decoded.describe().index, decoded.describe().checksums], ["seek table", true]);
      assert.equal(await sourceSha256(decoded, 1_000_003), sha256(data));
      for (const at of [data.length - 10, 0, FRAME_SIZE - 5, 7 * MiB + 3, 12 * MiB]) {
        assert.ok((await decoded.read(at, 10)).equals(data.subarray(at, at + 10)), `at ${at}`);
      }
    } finally {
      await decoded.close();
      await file.close();
    }
  });

  test("the output does not depend on the number of threads; the level changes it", async () => {
    const one = join(dir, "one.zst");
    const sink = await zstdWriter.create(one, { threads: 1 });
    await writeAll(sink, data, 0, MiB);
    await sink.close();
    assert.ok(readFileSync(one).equals(readFileSync(path)), "threads 1 and 3, other chunk sizes: same bytes");
    const high = join(dir, "high.zst");
    const s19 = await zstdWriter.create(high, { level: 12 });
    await writeAll(s19, data);
    await s19.close();
    assert.ok(readFileSync(high).length < readFileSync(path).length);
    await assert.rejects(zstdWriter.create(join(dir, "bad.zst"), { level: 99 }), (err: unknown) => err instanceof UsageError && /--level 99/.test(err.message));
    await assert.rejects(zstdWriter.create(join(dir, "bad.zst"), { threads: 0 }), UsageError);
  });

  test("writes out of order are refused: a compressed stream is written front to back", async () => {
    const sink = await zstdWriter.create(join(dir, "order.zst"), {});
    await sink.write(0, Buffer.alloc(10, 1));
    await assert.rejects(sink.write(100, Buffer.alloc(10, 1)), (err: unknown) => err instanceof UsageError && /written in order/.test(err.message));
    await sink.close();
  });
});

describe("resuming an interrupted .zst", { skip: needs("zstd") }, () => {
  const dir = tempDir();
  const data = mixedImage();
  const whole = join(dir, "whole.zst");

  test("cut anywhere (inside a frame, at a frame's end, inside the seek table), it resumes from its last whole frame and ends as the uninterrupted file", async () => {
    const sink = await zstdWriter.create(whole, {});
    await writeAll(sink, data);
    await sink.close();
    const file = readFileSync(whole);
    const { frames, tableStart } = parseSeekTable(file);
    const ends = frames.map((_, i) => frames.slice(0, i + 1).reduce((n, f) => n + f.c, 0));
    const inside = (i: number) => (ends[i - 1] ?? 0) + Math.floor((frames[i] as { c: number }).c / 2);
    const cuts: Array<[number, number]> = [
      [ends[2] as number, 3], // exactly after frame 3
      [inside(1), 1], // inside frame 2 (random bytes)
      [inside(3), 3], // inside frame 4 (text)
      [inside(6), 6], // inside frame 7 (zeros: a frame of a few bytes)
      [(ends[4] as number) + 2, 5], // inside frame 6's magic number
      [tableStart + 20, frames.length], // inside the seek table
      [file.length, frames.length], // finished
      [5, 0], // inside the first frame
    ];
    for (const [cut, wholeFrames] of cuts) {
      const path = join(dir, `cut-${cut}.zst`);
      writeFileSync(path, file.subarray(0, cut));
      const { sink: resumed, committed } = await zstdWriter.resume?.(path, {}) ?? assert.fail("zstd resumes");
      const expected = Math.min(data.length, wholeFrames * FRAME_SIZE);
      assert.equal(committed, expected, `cut at ${cut}: ${wholeFrames} whole frames`);
      await writeAll(resumed, data, committed);
      await resumed.close();
      assert.ok(readFileSync(path).equals(file), `cut at ${cut}: the finished file is the uninterrupted one`);
    }
  });

  test("a last frame whose bytes are damaged is dropped, not trusted", async () => {
    const file = readFileSync(whole);
    const { frames } = parseSeekTable(file);
    const end3 = frames.slice(0, 3).reduce((n, f) => n + f.c, 0);
    const damaged = Buffer.from(file.subarray(0, end3));
    damaged[end3 - 100] ^= 0xff; // inside frame 3, whose blocks still parse
    const path = join(dir, "damaged.zst");
    writeFileSync(path, damaged);
    const { sink, committed } = await zstdWriter.resume?.(path, {}) ?? assert.fail();
    assert.equal(committed, 2 * FRAME_SIZE);
    await sink.close();
    assert.equal((await run("zstd", ["-q", "-t", path])).code, 0);
  });

  test("a .zst that platter did not write (no content sizes) is not resumed", async () => {
    const path = join(dir, "foreign.zst");
    await sh(`(head -c 1000000 /dev/urandom | zstd -q -c; head -c 3000000 /dev/urandom | zstd -q -c) > '${path}'`);
    truncateSync(path, 2_000_000); // the first frame whole, the second cut
    await assert.rejects(zstdWriter.resume?.(path, {}) ?? Promise.resolve(), /cannot resume writing it: .*only a \.zst platter was writing can be resumed/);
  });
});

describe("platter convert to and from .zst", { skip: needs("zstd", "sfdisk", "mkfs.ext4", "mkfs.vfat", "mcopy") }, () => {
  test("convert mbr.img mbr.zst: zstd -t accepts it; it reads as the disk; converting back gives the disk", async () => {
    const raw = await fixture("make-mbr-image.sh", "mbr.img");
    const dir = tempDir();
    const zst = join(dir, "mbr.zst");
    const r = await platter(["convert", raw, zst, "--json"]);
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual([JSON.parse(r.stdout).to, JSON.parse(r.stdout).size], ["zstd", 64 * MiB]);
    assert.equal((await run("zstd", ["-q", "-t", zst])).code, 0);
    const file = await FileSource.open(zst);
    const decoded = await zstdFormat.open(file, noRelated);
    await assertSameDisk(decoded, raw);
    await decoded.close();
    await file.close();
    const back = join(dir, "back.img");
    const b = await platter(["convert", zst, back]);
    assert.equal(b.code, 0, b.stderr);
    assert.ok(readFileSync(back).equals(readFileSync(raw)));
  });
});
