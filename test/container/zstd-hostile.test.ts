/**
 * Hostile .zst files: truncated, bit-flipped, frames claiming huge output or
 * a huge window, seek tables that lie. Each ends in one CorruptImageError (or
 * UnsupportedError) naming the format and the offset, bytes before the
 * damage stay readable, memory stays bounded (measured in a child process),
 * nothing hangs.
 */
import assert from "node:assert/strict";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { before, describe, test } from "node:test";
import { fileURLToPath } from "node:url";
import { zstdFormat, zstdWriter } from "../../src/container/zstd/index.js";
import { FRAME_SIZE } from "../../src/container/zstd/writer.js";
import { CorruptImageError, PlatterError, UnsupportedError } from "../../src/errors.js";
import { MemorySource } from "../../src/io/memory-source.js";
import { prng } from "../helpers/fs-fuzz.js";
import { needs } from "../helpers/env.js";
import { nodeWithPeak } from "../helpers/peak-rss.js";
import { sh } from "../helpers/run.js";
import { tempDir } from "../helpers/tmp.js";
import { mixedImage, writeAll } from "./zstd-xz-compare.js";

const MiB = 1 << 20;
const CHILD = fileURLToPath(new URL("./zstd-xz-read-child.ts", import.meta.url));
const noRelated = { openRelated: async () => assert.fail("zstd names no related file") };

/** Open `bytes` as a .zst and read all of it: resolves, or rejects with what platter threw. */
async function openAndRead(bytes: Buffer): Promise<Buffer> {
  const decoded = await zstdFormat.open(new MemorySource(bytes, 512, "hostile.zst"), noRelated);
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

/** A platter .zst of `data` and where its frames and seek table are. */
async function seekable(dir: string, data: Buffer): Promise<{ file: Buffer; frames: Array<{ at: number; c: number }>; tableStart: number }> {
  const path = join(dir, `seekable-${data.length}.zst`);
  const sink = await zstdWriter.create(path, {});
  await writeAll(sink, data);
  await sink.close();
  const file = readFileSync(path);
  const count = file.readUInt32LE(file.length - 9);
  const tableStart = file.length - (8 + count * 12 + 9);
  const frames: Array<{ at: number; c: number }> = [];
  for (let i = 0, at = 0; i < count; i++) {
    const c = file.readUInt32LE(tableStart + 8 + i * 12);
    frames.push({ at, c });
    at += c;
  }
  return { file, frames, tableStart };
}

/** The seek table entry field `field` (0 compressed size, 4 decompressed size, 8 checksum) of frame `i`, changed. */
function withEntry(file: Buffer, tableStart: number, i: number, field: number, value: number): Buffer {
  const copy = Buffer.from(file);
  copy.writeUInt32LE(value >>> 0, tableStart + 8 + i * 12 + field);
  return copy;
}

describe("hostile .zst files", { skip: needs("zstd") }, () => {
  const dir = tempDir();
  const data = mixedImage();
  let base: Awaited<ReturnType<typeof seekable>>;
  before(async () => {
    base = await seekable(dir, data);
  });

  test("a single-frame file cut short: a CorruptImageError naming the cut", async () => {
    const path = join(dir, "single.zst");
    writeFileSync(join(dir, "mixed.img"), data);
    await sh(`zstd -q -c '${join(dir, "mixed.img")}' > '${path}'`);
    const whole = readFileSync(path);
    for (const cut of [whole.length - 1, whole.length >> 1, 7, 3]) {
      await assert.rejects(openAndRead(whole.subarray(0, cut)), rejectsWith(CorruptImageError, /hostile\.zst: (truncated zstd file: .* at offset \d+ runs past the end \(\d+ bytes\)|corrupt zstd file: \d stray bytes at offset 0)/));
    }
  });

  test("a seekable file cut short loses its seek table: it is walked, and the cut is named", async () => {
    const cut = (base.frames[3] as { at: number }).at + 100;
    await assert.rejects(openAndRead(base.file.subarray(0, cut)), rejectsWith(CorruptImageError, new RegExp(`truncated zstd file: .* of the frame at offset ${(base.frames[3] as { at: number }).at}`)));
  });

  test("a flipped bit in frame 4: reading it fails naming its offset; the frames before it read as before", async () => {
    const f3 = base.frames[3] as { at: number; c: number };
    const damaged = Buffer.from(base.file);
    damaged[f3.at + (f3.c >> 1)] ^= 0x10;
    const decoded = await zstdFormat.open(new MemorySource(damaged, 512, "hostile.zst"), noRelated);
    try {
      assert.ok((await decoded.read(0, 3 * FRAME_SIZE)).equals(data.subarray(0, 3 * FRAME_SIZE)), "frames 1-3 read as before the damage");
      await assert.rejects(decoded.read(3 * FRAME_SIZE, 4096), rejectsWith(CorruptImageError, new RegExp(`hostile\\.zst: corrupt zstd frame at offset ${f3.at}: `)));
    } finally {
      await decoded.close();
    }
  });

  test("a frame header claiming 2^40 bytes from one 3-byte block: refused before anything is allocated", async () => {
    // Magic, descriptor (8-byte content size, single segment), content size, one last RLE block of 5 bytes.
    const frame = Buffer.concat([Buffer.from([0x28, 0xb5, 0x2f, 0xfd, 0xe0]), Buffer.alloc(8), Buffer.from([0x2b, 0x00, 0x00, 0x41])]);
    frame.writeBigUInt64LE(2n ** 40n, 5);
    await assert.rejects(openAndRead(frame), rejectsWith(CorruptImageError, /corrupt zstd frame at offset 0: its header claims 1099511627776 bytes, its 1 blocks hold at most 131072/));
  });

  test("a frame declaring a 2 TiB window is refused by name (UnsupportedError), not allocated", async () => {
    // Magic, descriptor (no content size, not single segment), window byte: exponent 31, one last raw block of 1 byte.
    const frame = Buffer.from([0x28, 0xb5, 0x2f, 0xfd, 0x00, 31 << 3, 0x09, 0x00, 0x00, 0x78]);
    await assert.rejects(openAndRead(frame), rejectsWith(UnsupportedError, /zstd frame at offset 0 needs a 2097152 MiB window .*platter decodes windows up to 128 MiB/));
  });

  describe("a seek table that lies", () => {
    const cases: Array<[string, () => Buffer, RegExp]> = [
      ["a frame running past the table", () => withEntry(base.file, base.tableStart, 0, 0, (base.frames[0] as { c: number }).c + 1_000_000), /corrupt zstd seek table: frame \d+ \(\d+ bytes at offset \d+\) runs past the start of the seek table at \d+/],
      ["frames covering less than the file", () => withEntry(base.file, base.tableStart, 1, 0, (base.frames[1] as { c: number }).c - 1), /corrupt zstd seek table: its \d+ frames cover \d+ bytes, but \d+ come before the table/],
      ["a frame of 0 bytes", () => withEntry(base.file, base.tableStart, 2, 0, 0), /corrupt zstd seek table: frame 2 is 0 bytes long/],
      ["4 GiB from a few bytes", () => withEntry(base.file, base.tableStart, 5, 4, 0xffffffff), /corrupt zstd seek table: frame 5 at offset \d+ claims 4294967295 bytes from \d+ compressed bytes, more than zstd can encode/],
      [
        "zero frames",
        () => {
          const table = Buffer.from([0x5e, 0x2a, 0x4d, 0x18, 9, 0, 0, 0, 0, 0, 0, 0, 0x80, 0xb1, 0xea, 0x92, 0x8f]);
          return Buffer.concat([base.file.subarray(0, base.tableStart), table]);
        },
        /corrupt zstd seek table: its 0 frames cover 0 bytes, but \d+ come before the table/,
      ],
      [
        "an absurd frame count",
        () => {
          const copy = Buffer.from(base.file);
          copy.writeUInt32LE(0xfffffff0, copy.length - 9);
          return copy;
        },
        /corrupt zstd seek table: the seek table claims 4294967280 frames \(at most 134217728\)/,
      ],
      [
        "more frames than the file can hold",
        () => {
          const copy = Buffer.from(base.file);
          copy.writeUInt32LE(1_000_000, copy.length - 9);
          return copy;
        },
        /corrupt zstd seek table: its 1000000 entries need 12000017 bytes, the file has \d+/,
      ],
      [
        "reserved descriptor bits",
        () => {
          const copy = Buffer.from(base.file);
          copy[copy.length - 5] = 0x84;
          return copy;
        },
        /corrupt zstd seek table: reserved bits set in the seek table descriptor \(0x84\)/,
      ],
      [
        "a Frame_Size that is not the table's",
        () => {
          const copy = Buffer.from(base.file);
          copy.writeUInt32LE(copy.readUInt32LE(base.tableStart + 4) + 12, base.tableStart + 4);
          return copy;
        },
        /corrupt zstd seek table: the seek table frame says it holds \d+ bytes, its \d+ entries and footer take \d+/,
      ],
    ];
    for (const [what, make, pattern] of cases) {
      test(`${what}: refused at open`, async () => {
        await assert.rejects(openAndRead(make()), rejectsWith(CorruptImageError, pattern));
      });
    }

    test("overlapping frames (sizes moved from one frame to the next): the frames that moved fail when read, naming their offsets", async () => {
      const f1 = base.frames[1] as { at: number; c: number };
      const f2 = base.frames[2] as { at: number; c: number };
      let lie = withEntry(base.file, base.tableStart, 1, 0, f1.c - 10);
      lie = withEntry(lie, base.tableStart, 2, 0, f2.c + 10);
      const decoded = await zstdFormat.open(new MemorySource(lie, 512, "hostile.zst"), noRelated);
      try {
        assert.ok((await decoded.read(0, FRAME_SIZE)).equals(data.subarray(0, FRAME_SIZE)), "frame 1 is untouched");
        await assert.rejects(decoded.read(FRAME_SIZE, 10), rejectsWith(CorruptImageError, new RegExp(`corrupt zstd frame at offset ${f1.at}`)));
        await assert.rejects(decoded.read(2 * FRAME_SIZE, 10), rejectsWith(CorruptImageError, new RegExp(`corrupt zstd frame at offset ${f2.at - 10}: no zstd frame magic`)));
      } finally {
        await decoded.close();
      }
    });

    test("a decompressed size that is not the frame's, and a checksum that is not the frame's: refused when the frame is read", async () => {
      const sizeLie = withEntry(base.file, base.tableStart, 0, 4, FRAME_SIZE / 2);
      await assert.rejects(openAndRead(sizeLie), rejectsWith(CorruptImageError, new RegExp(`corrupt zstd frame at offset 0: its header says ${FRAME_SIZE} bytes, the index says ${FRAME_SIZE / 2}`)));
      const sum = base.file.readUInt32LE(base.tableStart + 8 + 8);
      const sumLie = withEntry(base.file, base.tableStart, 0, 8, sum ^ 1);
      await assert.rejects(openAndRead(sumLie), rejectsWith(CorruptImageError, /corrupt zstd frame at offset 0: its checksum 0x[0-9a-f]+ is not the seek table's/));
    });
  });

  test("bytes that are no frame after the last one: named with their offset", async () => {
    const path = join(dir, "trailing.zst");
    await sh(`head -c 100000 /dev/urandom | zstd -q -c > '${path}'; printf 'garbage!' >> '${path}'`);
    const file = readFileSync(path);
    await assert.rejects(openAndRead(file), rejectsWith(CorruptImageError, new RegExp(`corrupt zstd file: no frame at offset ${file.length - 8} \\(magic 0x62726167\\)`)));
  });

  test("80 copies with random bit flips: each reads as the original or fails with a PlatterError, never anything else", async () => {
    const small = mixedImage().subarray(0, 5 * MiB + 777);
    const { file } = await seekable(dir, small);
    const random = prng(42);
    let failed = 0;
    for (let copy = 0; copy < 80; copy++) {
      const damaged = Buffer.from(file);
      for (let f = 0; f < 1 + (copy % 3); f++) damaged[Math.floor(random() * damaged.length)] ^= 1 << Math.floor(random() * 8);
      try {
        const out = await openAndRead(damaged);
        assert.ok(out.equals(small), `copy ${copy} read without an error, so it must read right`);
      } catch (err) {
        if (!(err instanceof PlatterError)) assert.fail(`copy ${copy}: ${err instanceof Error ? err.stack : String(err)}`);
        failed++;
      }
    }
    assert.ok(failed > 40, `${failed} of 80 damaged copies were refused`);
  });

  describe("bombs, read in a child process whose peak memory is measured", () => {
    test("1 GiB of zeros in one frame without its size (33 KiB): sized by decoding, read at both ends, under 200 MiB", async () => {
      const path = join(dir, "bomb.zst");
      await sh(`head -c 1G /dev/zero | zstd -q -c > '${path}'`);
      const r = await nodeWithPeak(["--import", "tsx", CHILD, path, "0", "-65536", "65536"]);
      const result = JSON.parse(r.stdout);
      assert.equal(result.error, null);
      assert.equal(result.size, 1 << 30);
      assert.ok(r.peakMiB < 200, `peak memory ${r.peakMiB.toFixed(0)} MiB`);
    });

    test("64 GiB of zeros in the seekable format (2 MiB of file): random reads under 200 MiB", async () => {
      const path = join(dir, "bomb-seekable.zst");
      const sink = await zstdWriter.create(path, {});
      await sink.writeZeros(0, 64 * 1024 * MiB);
      await sink.close();
      const r = await nodeWithPeak(["--import", "tsx", CHILD, path, "0", "-65536", String(40 * 1024 * MiB + 12345), String(3 * 1024 * MiB)]);
      const result = JSON.parse(r.stdout);
      assert.equal(result.error, null);
      assert.equal(result.size, 64 * 1024 * MiB);
      assert.ok(r.peakMiB < 200, `peak memory ${r.peakMiB.toFixed(0)} MiB`);
    });
  });

  test("the source stays usable after a failed read: other frames still read", async () => {
    const f1 = base.frames[1] as { at: number; c: number };
    const damaged = Buffer.from(base.file);
    damaged[f1.at + 20] ^= 0xff;
    const decoded = await zstdFormat.open(new MemorySource(damaged, 512, "hostile.zst"), noRelated);
    try {
      await assert.rejects(decoded.read(FRAME_SIZE, 10), CorruptImageError);
      assert.ok((await decoded.read(2 * FRAME_SIZE, FRAME_SIZE)).equals(data.subarray(2 * FRAME_SIZE, 3 * FRAME_SIZE)));
      await assert.rejects(decoded.read(FRAME_SIZE, 10), CorruptImageError, "the failure is met again, not cached as data");
    } finally {
      await decoded.close();
    }
  });
});
