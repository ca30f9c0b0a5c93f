/**
 * .zst images the zstd tools write (zstd, zstd -T0, --long, concatenated
 * frames with and without content sizes, pzstd's skippable frames) of the
 * MBR and GPT fixture disks: decoded, they are the raw disk byte for byte,
 * and the partition table, filesystems and files read from them are what
 * platter reads on the raw disk.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { before, describe, test } from "node:test";
import { detectionBytes, type IndexCache } from "../../src/container/format.js";
import { CONTAINER_FORMATS } from "../../src/container/registry.js";
import { zstdFormat } from "../../src/container/zstd/index.js";
import { UnsupportedError } from "../../src/errors.js";
import { openImage } from "../../src/image/open-image.js";
import type { BlockSource } from "../../src/io/block-source.js";
import { CountingSource } from "../../src/io/counting-source.js";
import { readPartitionTable } from "../../src/partition/index.js";
import { FileSource } from "../../src/io/file-source.js";
import { needs } from "../helpers/env.js";
import { fixture } from "../helpers/fixtures.js";
import { run } from "../helpers/run.js";
import { assertSameDisk, compressedFixtures, sourceSha256 } from "./zstd-xz-compare.js";

const TOOLS = needs("zstd", "pzstd", "sfdisk", "mkfs.ext4", "mkfs.vfat", "mcopy", "sgdisk", "mkfs.exfat");

/** An in-memory IndexCache that counts what is saved. */
function memoryCache(): IndexCache & { saved: number } {
  const entries = new Map<string, Buffer>();
  return {
    saved: 0,
    async load(name) {
      return entries.get(name);
    },
    async save(name, data) {
      this.saved++;
      entries.set(name, data);
    },
  };
}

const noRelated = { openRelated: async () => assert.fail("zstd names no related file") };

describe("zstd files written by the zstd tools", { skip: TOOLS }, () => {
  let raw = "";
  let dir = "";
  before(async () => {
    raw = await fixture("make-mbr-image.sh", "mbr.img");
    dir = await compressedFixtures("make-compressed-zstd.sh", "zstd-mbr", raw);
  });

  // seekable: frames platter decodes whole (each at most 16 MiB); the single 64 MiB frames are read as a stream.
  const cases: Array<[string, string, boolean]> = [
    ["plain.zst", "zstd -3: one frame with its content size", false],
    ["t0.zst", "zstd -T0: one frame", false],
    ["long.zst", "zstd --long=27 from a pipe: one frame, 128 MiB window, no content size", false],
    ["multi.zst", "8 MiB pieces concatenated, each with its content size", true],
    ["multi-nosize.zst", "8 MiB pieces from pipes, no content sizes (learned by decoding)", true],
    ["pzstd.zst", "pzstd -p 2: frames behind skippable frames", true],
  ];
  for (const [name, what, seekable] of cases) {
    test(`${name} (${what}) reads as the raw disk: bytes, partition table, filesystems, files`, async () => {
      const image = await openImage(join(dir, name), { indexCache: false });
      try {
        assert.deepEqual(image.layers.map((l) => l.format), ["zstd"]);
        const layer = image.layers[0];
        assert.equal(layer?.seekable, seekable);
        if (!seekable) assert.match(String(layer?.describe().note), /platter convert/);
        await assertSameDisk(image.source, raw);
      } finally {
        await image.close();
      }
    });
  }

  test("the zstd tool agrees where platter learns the sizes by decoding: zstd -dc has the bytes platter decodes", async () => {
    for (const name of ["long.zst", "multi-nosize.zst"]) {
      const file = await FileSource.open(join(dir, name));
      const decoded = await zstdFormat.open(file, noRelated);
      const ours = await sourceSha256(decoded);
      await decoded.close();
      await file.close();
      const theirs = await run("bash", ["-c", `zstd -dc --long=27 '${join(dir, name)}' | sha256sum`]);
      assert.equal(ours, theirs.stdout.split(" ")[0], name);
    }
  });

  test("a frame whose window is 2 GiB (zstd --long=31) is refused in one line naming the window and the way out", async () => {
    const file = await FileSource.open(join(dir, "long31.zst"));
    try {
      await assert.rejects(zstdFormat.open(file, noRelated), (err: unknown) => {
        assert.ok(err instanceof UnsupportedError, String(err));
        assert.match(err.message, /zstd frame at offset 0 needs a 2048 MiB window \(zstd --long=31\); platter decodes windows up to 128 MiB/);
        return true;
      });
    } finally {
      await file.close();
    }
  });

  test("a single-frame file is probed from its start only: no VHD footer or backup GPT header looked for at its end", async () => {
    const file = await FileSource.open(join(dir, "plain.zst"));
    const decoded = await zstdFormat.open(file, noRelated);
    assert.equal(decoded.seekable, false);
    // Reaching the end would decode the whole frame (twice: the 512- and 4096-byte sector guesses go backwards).
    let furthest = 0;
    const watched: BlockSource = {
      size: decoded.size,
      sectorSize: decoded.sectorSize,
      name: decoded.name,
      seekable: decoded.seekable,
      read: (offset, length, into) => {
        furthest = Math.max(furthest, offset + length);
        return decoded.read(offset, length, into);
      },
      close: async () => {},
    };
    const { head, tail } = await detectionBytes(watched);
    assert.equal(tail, undefined);
    for (const format of CONTAINER_FORMATS) assert.equal(await format.detect(head, watched, tail), false, format.name);
    assert.equal((await readPartitionTable(watched)).scheme, "mbr");
    assert.ok(furthest < decoded.size - (4 << 20), `read up to ${furthest} of ${decoded.size} bytes`);
    await decoded.close();
    await file.close();
  });

  test("a walked index is kept in the index cache: the second open reads nothing but the file's last bytes", async () => {
    const cache = memoryCache();
    const path = join(dir, "multi-nosize.zst");
    const first = new CountingSource(await FileSource.open(path));
    const a = await zstdFormat.open(first, { ...noRelated, indexCache: cache });
    assert.equal(cache.saved, 1);
    assert.ok(first.bytesRead >= first.size, `the first open walks and decodes the file (read ${first.bytesRead} bytes)`);
    const second = new CountingSource(await FileSource.open(path));
    const b = await zstdFormat.open(second, { ...noRelated, indexCache: cache });
    assert.equal(cache.saved, 1, "nothing new to save");
    assert.ok(second.bytesRead <= 16, `the second open read ${second.bytesRead} bytes`);
    assert.equal(await sourceSha256(b), await sourceSha256(a));
    for (const s of [a, b, first, second]) await s.close();
  });

  test("a cached index that does not fit the file is ignored and rebuilt", async () => {
    const path = join(dir, "multi.zst");
    const cache = memoryCache();
    // The cache's own layout ("PZX2", count, then offset, compressed size and size per frame, then a tag byte each).
    const lies = Buffer.alloc(8 + 25);
    lies.writeUInt32LE(0x32585a50, 0);
    lies.writeUInt32LE(1, 4);
    lies.writeDoubleLE(0, 8);
    lies.writeDoubleLE(10, 16); // one frame of 10 bytes: not this file
    lies.writeDoubleLE(1e12, 24);
    for (const bad of [Buffer.from("PZX2 not an index"), lies]) {
      await cache.save("zstd-frames", bad);
      const file = await FileSource.open(path);
      const decoded = await zstdFormat.open(file, { ...noRelated, indexCache: cache });
      assert.equal(decoded.size, 64 << 20);
      await decoded.close();
      await file.close();
    }
  });
});

describe("zstd files of the GPT disk (FAT32, ext4, swap, exFAT)", { skip: TOOLS }, () => {
  test("pzstd.zst reads as the raw GPT disk", async () => {
    const raw = await fixture("make-gpt-image.sh", "gpt.img");
    const dir = await compressedFixtures("make-compressed-zstd.sh", "zstd-gpt", raw);
    for (const name of ["pzstd.zst"]) {
      const image = await openImage(join(dir, name), { indexCache: false });
      try {
        await assertSameDisk(image.source, raw);
      } finally {
        await image.close();
      }
    }
  });
});
