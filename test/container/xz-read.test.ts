/**
 * .xz images the xz tools write (one block, many blocks from -T0 and from
 * --block-size and pixz, concatenated streams with padding and an empty
 * stream, each check type, BCJ and delta filters) of the MBR and GPT fixture disks:
 * decoded, they are the raw disk byte for byte, and the partition table,
 * filesystems and files read from them are what platter reads on the raw disk.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { before, describe, test } from "node:test";
import { readXzBlocks } from "../../src/container/xz/block-list.js";
import { xzFormat } from "../../src/container/xz/index.js";
import { openImage } from "../../src/image/open-image.js";
import { CountingSource } from "../../src/io/counting-source.js";
import { FileSource } from "../../src/io/file-source.js";
import { needs } from "../helpers/env.js";
import { fixture } from "../helpers/fixtures.js";
import { run } from "../helpers/run.js";
import { assertSameDisk, compressedFixtures, sourceSha256 } from "./zstd-xz-compare.js";

const TOOLS = needs("xz", "pixz", "sfdisk", "mkfs.ext4", "mkfs.vfat", "mcopy", "sgdisk", "mkfs.exfat");
const noRelated = { openRelated: async () => assert.fail("xz names no related file") };

describe("xz files written by the xz tool", { skip: TOOLS }, () => {
  let raw = "";
  let dir = "";
  before(async () => {
    raw = await fixture("make-mbr-image.sh", "mbr.img");
    dir = await compressedFixtures("make-compressed-xz.sh", "xz-mbr", raw);
  });

  // [file, what, blocks, streams, seekable]: blocks of 16 MiB and less are decoded whole; larger ones as a stream.
  const cases: Array<[string, string, number, number, boolean]> = [
    ["plain.xz", "xz -6: one 64 MiB block", 1, 1, false],
    ["t0.xz", "xz -T0 --block-size=1MiB", 64, 1, true],
    ["blocks.xz", "xz -T1 --block-size=4MiB", 16, 1, true],
    ["concat.xz", "4 streams: CRC32, empty, CRC64 (one 21 MiB block), SHA-256; stream padding", 14, 4, false],
    ["nocheck.xz", "--check=none", 32, 1, true],
    ["filters.xz", "--x86 --delta --lzma2, 8 MiB blocks", 8, 1, true],
    ["pixz.xz", "pixz -1: 2 MiB blocks, CRC32", 32, 1, true],
  ];
  for (const [name, what, blocks, streams, seekable] of cases) {
    test(`${name} (${what}) reads as the raw disk: bytes, partition table, filesystems, files`, async () => {
      const image = await openImage(join(dir, name), { indexCache: false });
      try {
        assert.deepEqual(image.layers.map((l) => l.format), ["xz"]);
        const layer = image.layers[0];
        assert.deepEqual([layer?.describe().blocks, layer?.describe().streams, layer?.seekable], [blocks, streams, seekable]);
        await assertSameDisk(image.source, raw);
      } finally {
        await image.close();
      }
    });
  }

  test("xz -l agrees on the streams and blocks, and on where each block is", async () => {
    for (const [name, , blocks, streams] of cases) {
      const path = join(dir, name);
      const list = await run("xz", ["--robot", "-lvv", path]);
      const totals = list.stdout.split("\n").find((l) => l.startsWith("totals"))?.split("\t") ?? [];
      assert.deepEqual([Number(totals[1]), Number(totals[2])], [streams, blocks], name);
      // "block" lines: stream, block in stream, block in file, compressed offset, uncompressed offset, total size, uncompressed size...
      const theirs = list.stdout.split("\n").filter((l) => l.startsWith("block\t")).map((l) => l.split("\t").slice(4, 8).map(Number));
      const file = await FileSource.open(path);
      const ours = [...(await readXzBlocks(file)).blocks].map((b) => [b.offset, b.start, b.compressedSize, b.size]);
      await file.close();
      assert.deepEqual(ours, theirs, name);
    }
  });

  test("xz -dc agrees on the bytes of the file whose blocks are a stream (plain.xz)", async () => {
    const path = join(dir, "plain.xz");
    const file = await FileSource.open(path);
    const decoded = await xzFormat.open(file, noRelated);
    const theirs = await run("bash", ["-c", `xz -dc '${path}' | sha256sum`]);
    assert.equal(await sourceSha256(decoded), theirs.stdout.split(" ")[0]);
    await decoded.close();
    await file.close();
  });

  test("opening reads only the ends of the streams: a few KiB, whatever the file holds", async () => {
    const file = new CountingSource(await FileSource.open(join(dir, "t0.xz")));
    const decoded = await xzFormat.open(file, noRelated);
    assert.ok(file.bytesRead < 8192, `${file.bytesRead} bytes read to open`);
    const before = file.bytesRead;
    await decoded.read(40 << 20, 4096);
    assert.ok(file.bytesRead - before < 4096, "one 4 KiB read decodes one 1 MiB block: a few hundred compressed bytes here");
    await decoded.close();
    await file.close();
  });
});

describe("xz files of the GPT disk (FAT32, ext4, swap, exFAT)", { skip: TOOLS }, () => {
  test("concat.xz reads as the raw GPT disk", async () => {
    const raw = await fixture("make-gpt-image.sh", "gpt.img");
    const dir = await compressedFixtures("make-compressed-xz.sh", "xz-gpt", raw);
    for (const name of ["concat.xz"]) {
      const image = await openImage(join(dir, name), { indexCache: false });
      try {
        await assertSameDisk(image.source, raw);
      } finally {
        await image.close();
      }
    }
  });
});
