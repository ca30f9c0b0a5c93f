/**
 * Hostile .xz files: truncated, bit-flipped, an index that lies (its CRC32
 * made right again), a block needing a 3 GiB dictionary, bombs. Each ends in
 * one CorruptImageError (or UnsupportedError) naming the format and the
 * offset, blocks before the damage stay readable, memory stays bounded
 * (measured in a child process), nothing hangs.
 */
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { before, describe, test } from "node:test";
import { fileURLToPath } from "node:url";
import { crc32 } from "node:zlib";
import { xzFormat, xzWriter } from "../../src/container/xz/index.js";
import { CorruptImageError, PlatterError, UnsupportedError } from "../../src/errors.js";
import { MemorySource } from "../../src/io/memory-source.js";
import { needs } from "../helpers/env.js";
import { nodeWithPeak } from "../helpers/peak-rss.js";
import { prng } from "../helpers/fs-fuzz.js";
import { run, sh } from "../helpers/run.js";
import { tempDir } from "../helpers/tmp.js";
import { mixedImage, writeAll } from "./zstd-xz-compare.js";

const MiB = 1 << 20;
const CHILD = fileURLToPath(new URL("./zstd-xz-read-child.ts", import.meta.url));
const noRelated = { openRelated: async () => assert.fail("xz names no related file") };

async function openAndRead(bytes: Buffer): Promise<Buffer> {
  const decoded = await xzFormat.open(new MemorySource(bytes, 512, "hostile.xz"), noRelated);
  try {
    return await decoded.read(0, decoded.size);
  } finally {
    await decoded.close();
  }
}

function rejectsWith(kind: typeof CorruptImageError | typeof UnsupportedError, pattern: RegExp) {
  return (err: unknown) => {
    assert.ok(err instanceof kind, `${kind.name} expected, got ${err instanceof Error ? err.stack : String(err)}`);
    assert.match(err.message, pattern);
    assert.equal(err.message.split("\n").length, 1, "one line");
    return true;
  };
}

/** Where the parts of a one-stream .xz are, read from its footer as the format describes it (not by platter's reader). */
function layout(file: Buffer): { indexAt: number; indexSize: number; footerAt: number } {
  const footerAt = file.length - 12;
  assert.equal(file.subarray(footerAt + 10).toString(), "YZ");
  const indexSize = (file.readUInt32LE(footerAt + 4) + 1) * 4;
  return { indexAt: footerAt - indexSize, indexSize, footerAt };
}

function vli(n: bigint): number[] {
  const out: number[] = [];
  while (n >= 0x80n) {
    out.push(Number(n & 0x7fn) | 0x80);
    n >>= 7n;
  }
  out.push(Number(n));
  return out;
}

/** The index records of a one-stream .xz: [unpadded size, uncompressed size] each, parsed as the format describes. */
function indexRecords(file: Buffer): Array<[bigint, bigint]> {
  const { indexAt } = layout(file);
  let at = indexAt + 1;
  const next = () => {
    let value = 0n;
    for (let shift = 0n; ; shift += 7n) {
      const byte = file[at++] as number;
      value |= BigInt(byte & 0x7f) << shift;
      if (!(byte & 0x80)) return value;
    }
  };
  const count = Number(next());
  return Array.from({ length: count }, () => [next(), next()] as [bigint, bigint]);
}

/**
 * `file` with another index (these records, this record count) and a footer
 * pointing to it, their CRC32s right: an index that lies, not a damaged one.
 */
function withIndex(file: Buffer, records: Array<[bigint, bigint]>, count = records.length): Buffer {
  const { indexAt } = layout(file);
  const body = [0, ...vli(BigInt(count)), ...records.flatMap(([u, c]) => [...vli(u), ...vli(c)])];
  while (body.length % 4) body.push(0);
  const index = Buffer.alloc(body.length + 4);
  Buffer.from(body).copy(index);
  index.writeUInt32LE(crc32(index.subarray(0, body.length)), body.length);
  const footer = Buffer.from(file.subarray(file.length - 12));
  footer.writeUInt32LE(index.length / 4 - 1, 4);
  footer.writeUInt32LE(crc32(footer.subarray(4, 10)), 0);
  return Buffer.concat([file.subarray(0, indexAt), index, footer]);
}

describe("hostile .xz files", { skip: needs("xz") }, () => {
  const dir = tempDir();
  const data = mixedImage();
  let file = Buffer.alloc(0);
  let blocks: Array<{ at: number; total: number }> = [];
  before(async () => {
    const path = join(dir, "mixed.xz");
    const sink = await xzWriter.create(path, { level: 1 });
    await writeAll(sink, data);
    await sink.close();
    file = readFileSync(path);
    const list = await run("xz", ["--robot", "-lvv", path]);
    blocks = list.stdout
      .split("\n")
      .filter((l) => l.startsWith("block\t"))
      .map((l) => ({ at: Number(l.split("\t")[4]), total: Number(l.split("\t")[6]) }));
  });

  test("cut short anywhere: a CorruptImageError saying the file is truncated", async () => {
    const { indexAt } = layout(file);
    for (const cut of [file.length - 1, file.length - 4, indexAt + 4, (blocks[2] as { at: number }).at + 1000, 20]) {
      await assert.rejects(openAndRead(file.subarray(0, cut)), rejectsWith(CorruptImageError, /hostile\.xz: corrupt xz file: (its size \(\d+ bytes\) is not a multiple of 4: it is truncated|no stream footer at offset \d+: the file is truncated|\d+ bytes at offset 0 are too few for a stream: the file is truncated)/));
    }
  });

  test("a flipped bit in block 3: reading it fails naming its offset; the blocks before it read as before", async () => {
    const b2 = blocks[2] as { at: number; total: number };
    const damaged = Buffer.from(file);
    damaged[b2.at + (b2.total >> 1)] ^= 0x08;
    const decoded = await xzFormat.open(new MemorySource(damaged, 512, "hostile.xz"), noRelated);
    try {
      assert.ok((await decoded.read(0, 8 * MiB)).equals(data.subarray(0, 8 * MiB)), "blocks 1-2 read as before the damage");
      await assert.rejects(decoded.read(8 * MiB + 5, 4096), rejectsWith(CorruptImageError, new RegExp(`hostile\\.xz: corrupt xz block at offset ${b2.at}: `)));
      assert.ok((await decoded.read(12 * MiB, 4 * MiB)).equals(data.subarray(12 * MiB, 16 * MiB)), "and the blocks after it");
    } finally {
      await decoded.close();
    }
  });

  test("a flipped bit in the index, the footer, the stream header, a block header: each named", async () => {
    const { indexAt, footerAt } = layout(file);
    const flip = (at: number) => {
      const copy = Buffer.from(file);
      copy[at] ^= 0x01;
      return copy;
    };
    await assert.rejects(openAndRead(flip(indexAt + 3)), rejectsWith(CorruptImageError, new RegExp(`corrupt xz file: index at offset ${indexAt}: index CRC32 mismatch`)));
    await assert.rejects(openAndRead(flip(footerAt + 5)), rejectsWith(CorruptImageError, new RegExp(`corrupt xz file: stream footer at offset ${footerAt}: stream footer CRC32 mismatch`)));
    await assert.rejects(openAndRead(flip(7)), rejectsWith(CorruptImageError, /corrupt xz file: stream header at offset 0: (stream header CRC32 mismatch|unsupported stream flags)/));
    const b1 = blocks[1] as { at: number };
    await assert.rejects(openAndRead(flip(b1.at + 2)), rejectsWith(CorruptImageError, new RegExp(`corrupt xz block at offset ${b1.at}`)));
  });

  describe("an index that lies (its CRC32 right)", () => {
    test("a block one byte larger than it is: refused when it is read, naming it", async () => {
      const records = indexRecords(file);
      records[0] = [(records[0] as [bigint, bigint])[0], (records[0] as [bigint, bigint])[1] + 1n];
      const decoded = await xzFormat.open(new MemorySource(withIndex(file, records), 512, "hostile.xz"), noRelated);
      try {
        assert.equal(decoded.size, data.length + 1);
        await assert.rejects(decoded.read(0, 10), rejectsWith(CorruptImageError, /corrupt xz block at offset 12: /));
      } finally {
        await decoded.close();
      }
    });

    test("an unpadded size 4 bytes off: the blocks the index lists do not fit before it, and that is said", async () => {
      const records = indexRecords(file);
      records[1] = [(records[1] as [bigint, bigint])[0] + 4n, (records[1] as [bigint, bigint])[1]];
      await assert.rejects(openAndRead(withIndex(file, records)), rejectsWith(CorruptImageError, /corrupt xz file: the index at offset \d+ lists \d+ bytes of blocks, more than come before it/));
    });

    test("more records than the index can hold: refused before looping on them", async () => {
      await assert.rejects(openAndRead(withIndex(file, indexRecords(file), 1000)), rejectsWith(CorruptImageError, /corrupt xz file: index at offset \d+: index claims 1000 records in \d+ bytes/));
    });

    test("2^50 bytes from a 700-byte block: refused at open, naming the block", async () => {
      // One block of 700 bytes (never read: the index is refused first) and an index giving it 2^50 bytes.
      const lie = withIndex(Buffer.concat([file.subarray(0, 12), Buffer.alloc(700), file.subarray(layout(file).indexAt)]), [[700n, 2n ** 50n]]);
      await assert.rejects(openAndRead(lie), rejectsWith(CorruptImageError, /corrupt xz file: the index at offset 712 gives block 0 1125899906842624 bytes from 700, more than xz can encode in them/));
    });

    test("a backward size pointing before the file's start", async () => {
      const copy = Buffer.from(file);
      const footerAt = copy.length - 12;
      copy.writeUInt32LE(0x3fffffff, footerAt + 4);
      copy.writeUInt32LE(crc32(copy.subarray(footerAt + 4, footerAt + 10)), footerAt);
      await assert.rejects(openAndRead(copy), rejectsWith(CorruptImageError, new RegExp(`corrupt xz file: the stream footer at offset ${footerAt} points to an index of 4294967296 bytes before the file's start`)));
    });
  });

  test("a block whose header asks for a 3 GiB dictionary: an UnsupportedError naming what it needs, nothing allocated", async () => {
    const path = join(dir, "small.xz");
    await sh(`head -c 100000 /dev/urandom | xz -1 -T1 -c > '${path}'`);
    const copy = readFileSync(path);
    // The block header: size byte, flags (one filter, no sizes), LZMA2 id 0x21, 1 property byte, the dictionary byte.
    assert.deepEqual([...copy.subarray(12, 16)], [0x02, 0x00, 0x21, 0x01]);
    copy[16] = 39; // 3 GiB
    copy.writeUInt32LE(crc32(copy.subarray(12, 20)), 20);
    await assert.rejects(openAndRead(copy), rejectsWith(UnsupportedError, /hostile\.xz: xz block at offset 12 needs 30\d\d MiB to decode; platter allows 80 MiB per block: decompress it with xz -d/));
  });

  test("40 copies with random bit flips: each reads as the original or fails with a PlatterError, never anything else", async () => {
    const small = mixedImage().subarray(0, 9 * MiB + 777);
    const path = join(dir, "small-mixed.xz");
    const sink = await xzWriter.create(path, { level: 0 });
    await writeAll(sink, small);
    await sink.close();
    const whole = readFileSync(path);
    const random = prng(7);
    let failed = 0;
    for (let copy = 0; copy < 40; copy++) {
      const damaged = Buffer.from(whole);
      for (let f = 0; f < 1 + (copy % 3); f++) damaged[Math.floor(random() * damaged.length)] ^= 1 << Math.floor(random() * 8);
      try {
        const out = await openAndRead(damaged);
        assert.ok(out.equals(small), `copy ${copy} read without an error, so it must read right`);
      } catch (err) {
        if (!(err instanceof PlatterError)) assert.fail(`copy ${copy}: ${err instanceof Error ? err.stack : String(err)}`);
        failed++;
      }
    }
    assert.ok(failed > 20, `${failed} of 40 damaged copies were refused`);
  });

  describe("bombs, read in a child process whose peak memory is measured", () => {
    test("1 GiB of zeros as 16 streams of one 64 MiB block each (150 KiB): read at both ends, under 200 MiB", async () => {
      const one = join(dir, "zeros64.xz");
      const path = join(dir, "bomb.xz");
      await sh(`head -c 64M /dev/zero | xz -1 -T1 -c > '${one}'; for i in $(seq 16); do cat '${one}'; done > '${path}'`);
      const r = await nodeWithPeak(["--import", "tsx", CHILD, path, "0", "-65536", String(700 * MiB)]);
      const result = JSON.parse(r.stdout);
      assert.equal(result.error, null);
      assert.equal(result.size, 1 << 30);
      assert.ok(r.peakMiB < 200, `peak memory ${r.peakMiB.toFixed(0)} MiB`);
    });

    test("64 GiB of zeros in 4 MiB blocks (platter's own, 0.5 MiB): random reads under 200 MiB", async () => {
      const path = join(dir, "bomb-blocks.xz");
      const sink = await xzWriter.create(path, {});
      await sink.writeZeros(0, 64 * 1024 * MiB);
      await sink.close();
      const r = await nodeWithPeak(["--import", "tsx", CHILD, path, "0", "-65536", String(40 * 1024 * MiB + 12345), String(3 * 1024 * MiB)]);
      const result = JSON.parse(r.stdout);
      assert.equal(result.error, null);
      assert.equal(result.size, 64 * 1024 * MiB);
      assert.ok(r.peakMiB < 200, `peak memory ${r.peakMiB.toFixed(0)} MiB`);
    });
  });
});
