/**
 * Damaged and crafted partclone images: each ends in one clean
 * CorruptImageError naming the field or the byte offset, at open when the
 * header or bitmap is wrong, at the first read of a strip whose checksum is
 * wrong; never a crash, a hang, unbounded memory or a partial output file.
 * The damage is done to images partclone made (make-partclone-images.sh);
 * the few that need no partclone are crafted whole, here.
 */
import assert from "node:assert/strict";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { before, describe, test } from "node:test";
import { partcloneCrc32 } from "../../src/container/partclone/checksum.js";
import { decodePartcloneHeader, encodePartcloneHeader, type PartcloneHeader } from "../../src/container/partclone/header.js";
import { PartcloneSource } from "../../src/container/partclone/index.js";
import { CorruptImageError } from "../../src/errors.js";
import { MemorySource } from "../../src/io/memory-source.js";
import { needs } from "../helpers/env.js";
import { fixture } from "../helpers/fixtures.js";
import { nodeWithPeak } from "../helpers/peak-rss.js";
import { CLI, platter } from "../helpers/run.js";
import { tempDir } from "../helpers/tmp.js";

const V2_HEADER = 110;

function open(image: Buffer): Promise<PartcloneSource> {
  return PartcloneSource.open(new MemorySource(image, 512, "bad.ptcl"));
}

/** Read every used byte, 1 MiB at a time, as convert would. */
async function readAll(source: PartcloneSource): Promise<void> {
  for (const [start, length] of await source.dataRanges(0, source.size)) {
    for (let at = start; at < start + length; at += 1 << 20) await source.read(at, Math.min(1 << 20, start + length - at));
  }
}

/** `promise` rejects with one CorruptImageError of one line matching `pattern`. */
async function rejectsCorrupt(promise: Promise<unknown>, pattern: RegExp): Promise<void> {
  await assert.rejects(promise, (err: Error) => {
    assert.ok(err instanceof CorruptImageError, `${err.name}: ${err.message}`);
    assert.match(err.message, pattern);
    assert.equal(err.message.split("\n").length, 1, "one line");
    return true;
  });
}

/** `image` with its header replaced by `change` of the decoded one, CRC recomputed (a header that lies consistently). */
function withHeader(image: Buffer, change: (h: PartcloneHeader) => void): Buffer {
  const header = decodePartcloneHeader(image.subarray(0, V2_HEADER));
  change(header);
  return Buffer.concat([encodePartcloneHeader(header), image.subarray(V2_HEADER)]);
}

function flipped(image: Buffer, at: number): Buffer {
  const copy = Buffer.from(image);
  copy[at] ^= 0x40;
  return copy;
}

describe("partclone images damaged after partclone made them", { skip: needs("partclone.ext4", "partclone.restore", "mkfs.ext4", "debugfs", "mkfs.vfat", "mcopy", "mkntfs", "ntfscp", "zstd", "perl") }, () => {
  let dir: string;
  /** ext4-k7.ptcl: 6144 blocks of 4096, 2116 used; bitmap at 110 (768 bytes), its CRC at 878, data at 882 in strips of 7 blocks + 4. */
  let k7: Buffer;
  const BITMAP_CRC_AT = V2_HEADER + 768;
  const DATA_AT = BITMAP_CRC_AT + 4;
  const STRIP = 7 * 4096 + 4;
  before(async () => {
    dir = await fixture("make-partclone-images.sh", "partclone");
    k7 = readFileSync(join(dir, "ext4-k7.ptcl"));
    const header = decodePartcloneHeader(k7);
    assert.deepEqual([header.blockSize, header.totalBlocks, header.usedBlocks, header.blocksPerChecksum], [4096, 6144, 2116, 7], "the fixture is as this test assumes");
  });

  test("a header whose CRC lies (one byte of the filesystem name changed)", async () => {
    await rejectsCorrupt(open(flipped(k7, 40)), /header: crc32 \(byte 106\) is 0x[0-9A-F]{8}, but the header's bytes give 0x[0-9A-F]{8}/);
  });

  test("header fields that lie with a good CRC: each names its field and byte", async () => {
    const cases: Array<[(h: PartcloneHeader) => void, RegExp]> = [
      [(h) => void (h.blockSize = 0), /block_size \(byte 84\) is 0/],
      [(h) => void (h.usedBlocks = h.totalBlocks + 1), /usedblocks \(byte 76\) is 6145, more than the 6144 blocks/],
      [(h) => void (h.deviceSize = 4096), /device_size \(byte 52\) is 4096, smaller than 6144 blocks of 4096 bytes/],
      [(h) => void (h.blocksPerChecksum = 0), /blocks_per_checksum \(byte 100\) is 0/],
    ];
    for (const [change, pattern] of cases) await rejectsCorrupt(open(withHeader(k7, change)), pattern);
    // A 64-bit size past 2^53 cannot be a disk.
    const huge = withHeader(k7, () => {});
    huge.writeBigUInt64LE(1n << 62n, 52);
    huge.writeUInt32LE(partcloneCrc32(huge.subarray(0, 106)), 106);
    await rejectsCorrupt(open(huge), /device_size \(byte 52\) 4611686018427387904 is out of range/);
  });

  test("a bitmap shorter than the block count says: its CRC is looked for past its end, the blocks it marks are counted", async () => {
    const longer = (extra: number) =>
      withHeader(k7, (h) => {
        h.totalBlocks += extra;
        h.deviceSize = h.totalBlocks * h.blockSize;
      });
    const crcAt = V2_HEADER + (6144 + 80000) / 8;
    await rejectsCorrupt(open(longer(80000)), new RegExp(`bitmap's CRC32 at offset ${crcAt} is 0x00000000, but its ${crcAt - V2_HEADER} bytes give`));
    // 1000 bytes further on, the real CRC and then the boot block's zeros follow: partclone's CRC (never inverted) of
    // bytes + their CRC + zeros is 0, which those zeros match; the count of used blocks is what gives the lie away.
    await rejectsCorrupt(open(longer(8000)), /usedblocks \(byte 76\) is 2116, but the bitmap marks \d+ blocks used/);
    await rejectsCorrupt(open(k7.subarray(0, 500)), /bitmap of 6144 blocks \(768 bytes and its CRC at offset 110\) runs past the end of the image \(500 bytes\)/);
  });

  test("a bitmap bit changed: the bitmap's CRC says so", async () => {
    await rejectsCorrupt(open(flipped(k7, V2_HEADER + 300)), new RegExp(`bitmap's CRC32 at offset ${BITMAP_CRC_AT} is`));
  });

  test("a used-block count that disagrees with the bitmap", async () => {
    await rejectsCorrupt(open(withHeader(k7, (h) => void (h.usedBlocks -= 1))), /usedblocks \(byte 76\) is 2115, but the bitmap marks 2116 blocks used/);
  });

  test("truncated data: refused at open, with where the data should end", async () => {
    const end = DATA_AT + 2116 * 4096 + Math.ceil(2116 / 7) * 4;
    assert.equal(k7.length, end);
    await rejectsCorrupt(open(k7.subarray(0, end - 1000)), new RegExp(`truncated: its 2116 blocks of 4096 bytes and their checksums run from offset ${DATA_AT} to ${end}, but the image ends at ${end - 1000}`));
  });

  test("a wrong strip checksum: the image opens, the read that touches the strip fails naming the block and both offsets", async () => {
    const strip = 3;
    const source = await open(flipped(k7, DATA_AT + strip * STRIP + 5000));
    // The used block 21 (the strip's first) is the 22nd block the bitmap marks.
    const blocks: number[] = [];
    for (const [start, length] of await source.dataRanges(0, source.size)) for (let b = start / 4096; b < (start + length) / 4096 && blocks.length < 22; b++) blocks.push(b);
    const block = blocks[21];
    await source.read(0, blocks[20] * 4096 + 4096); // everything before the strip is fine
    const where = `checksum error reading block ${block}: the strip of used blocks 21-27 at offset ${DATA_AT + strip * STRIP} gives CRC32 0x[0-9A-F]{8}, the image has 0x[0-9A-F]{8} at offset ${DATA_AT + strip * STRIP + 7 * 4096}`;
    await rejectsCorrupt(source.read(block * 4096, 4096), new RegExp(where));
    await rejectsCorrupt(readAll(source), /checksum error/); // reported again, not forgotten
  });

  test("a wrong checksum in a strip too long to hold (-k 100000) is found by the streaming check", async () => {
    const kbig = readFileSync(join(dir, "ext4-kbig.ptcl"));
    const dataAt = DATA_AT;
    const source = await open(flipped(kbig, dataAt + 2116 * 4096 - 10));
    await rejectsCorrupt(source.read(0, 4096), new RegExp(`checksum error reading block 0: the strip of used blocks 0-2115 at offset ${dataAt} gives`));
  });

  test("a changed checksum in a chained image (-K) fails its own strip and the next, which goes on from it", async () => {
    const chained = readFileSync(join(dir, "ext4-k1500-noreseed.ptcl"));
    const firstCrcAt = DATA_AT + 1500 * 4096;
    const source = await open(flipped(chained, firstCrcAt));
    await rejectsCorrupt(readAll(source), new RegExp(`used blocks 0-1499 .* at offset ${firstCrcAt}`));
    const ranges = await source.dataRanges(0, source.size);
    const last = ranges.at(-1) as [number, number];
    await rejectsCorrupt(source.read(last[0] + last[1] - 4096, 4096), /used blocks 1500-2115/);
  });

  test("convert of a damaged image: exit 1, one line, and no output file left behind", async () => {
    const out = tempDir();
    writeFileSync(join(out, "bad.ptcl"), flipped(k7, DATA_AT + 100 * STRIP + 7));
    const r = await platter(["convert", join(out, "bad.ptcl"), join(out, "raw.img")]);
    assert.equal(r.code, 1, r.stderr);
    assert.match(r.stderr, /checksum error reading block \d+/);
    assert.equal(r.stderr.trim().split("\n").length, 1, r.stderr);
    assert.ok(!existsSync(join(out, "raw.img")), "no partial raw.img");
  });
});

describe("partclone headers crafted to claim the impossible", () => {
  function crafted(change: (h: PartcloneHeader) => void): Buffer {
    const header: PartcloneHeader = {
      imageVersion: 2,
      partcloneVersion: "0.3.23",
      filesystem: "EXTFS",
      deviceSize: 4096 * 64,
      totalBlocks: 64,
      usedBlocks: 64,
      superBlockUsedBlocks: 64,
      blockSize: 4096,
      checksum: "crc32",
      checksumSize: 4,
      blocksPerChecksum: 256,
      reseedChecksum: true,
      bitmapMode: "bit",
      cpuBits: 64,
      headerSize: V2_HEADER,
    };
    change(header);
    return Buffer.concat([encodePartcloneHeader(header), Buffer.alloc(4096)]);
  }

  test("a petabyte filesystem in a 4 KiB file: refused at open, in bounded memory, through the CLI", async () => {
    const out = tempDir();
    const path = join(out, "huge.ptcl");
    writeFileSync(
      path,
      crafted((h) => {
        h.totalBlocks = h.usedBlocks = h.superBlockUsedBlocks = 2 ** 38;
        h.deviceSize = 2 ** 50;
        h.blocksPerChecksum = 2 ** 32 - 1;
      }),
    );
    const r = await nodeWithPeak([CLI, "info", path]);
    assert.equal(r.code, 1, r.stderr);
    assert.match(r.stderr, /bitmap of 274877906944 blocks \(34359738368 bytes and its CRC at offset 110\) runs past the end of the image \(4206 bytes\)/);
    assert.equal(r.stderr.trim().split("\n").length, 1, r.stderr);
    assert.ok(r.peakMiB < 150, `peak ${r.peakMiB} MiB`);
  });

  test("a version 0001 byte map not followed by its magic: the map is not as long as the header says", async () => {
    const header = encodePartcloneHeader({
      imageVersion: 1, partcloneVersion: null, filesystem: "EXTFS", deviceSize: 64 * 4096, totalBlocks: 64, usedBlocks: 0,
      superBlockUsedBlocks: null, blockSize: 4096, checksum: "crc32-0001", checksumSize: 4, blocksPerChecksum: 1,
      reseedChecksum: false, bitmapMode: "byte", cpuBits: null, headerSize: 4160,
    });
    const image = Buffer.concat([header, Buffer.alloc(60), Buffer.from("BiTmAgIc"), Buffer.alloc(4)]);
    await rejectsCorrupt(open(image), /no "BiTmAgIc" after the bitmap, at offset 4224: the bitmap is not 64 bytes long/);
  });

  test("no bitmap and fewer blocks stored than the filesystem has: the data section runs past the end", async () => {
    await rejectsCorrupt(open(crafted((h) => void (h.bitmapMode = "none"))), /its 64 blocks of 4096 bytes and their checksums run from offset 110 to 262258, but the image ends at 4206/);
    await rejectsCorrupt(open(crafted((h) => Object.assign(h, { bitmapMode: "none", usedBlocks: 3 }))), /usedblocks \(byte 76\) is 3, but an image without a bitmap holds all 64 blocks/);
  });
});
