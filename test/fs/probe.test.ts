import assert from "node:assert/strict";
import { readdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, test } from "node:test";
import { probeFilesystem, probeWith, ProbeReader } from "../../src/fs/probe.js";
import { openSource } from "../../src/io/file-source.js";
import { MemorySource } from "../../src/io/memory-source.js";
import { blkid, expectedProbe } from "../helpers/blkid.js";
import { needs } from "../helpers/env.js";
import { fixture } from "../helpers/fixtures.js";
import { tempDir } from "../helpers/tmp.js";

/** Formats whose probe needs more than the common handful of 4 KiB blocks, and why. */
const READ_BUDGET = 64 * 1024;

describe("filesystem probe agrees with blkid -p", { skip: needs("blkid") }, async () => {
  const dir = await fixture("make-probe-images.sh", "probe-images");
  const images = readdirSync(dir).filter((f) => /\.(img|iso)$/.test(f)).sort();

  for (const name of images) {
    test(`${name}: TYPE, LABEL, UUID, VERSION as blkid -p -o export prints them`, async () => {
      const path = join(dir, name);
      const expected = expectedProbe(await blkid(path));
      assert.ok(expected, `blkid found nothing on ${name}`);
      const source = await openSource(path);
      try {
        const reader = new ProbeReader(source);
        assert.deepEqual(await probeWith(reader), expected);
        assert.ok(reader.bytesRead <= READ_BUDGET, `${name}: probe read ${reader.bytesRead} bytes (budget ${READ_BUDGET})`);
      } finally {
        await source.close();
      }
    });
  }
});

describe("filesystem probe on hand-built superblocks (blkid as the judge)", () => {
  test("HFS+ (no mkfs.hfsplus in Debian 12): label from the catalog's first leaf key, UUID from the Finder id, as blkid", { skip: needs("blkid") }, async () => {
    const path = join(tempDir(), "hfsplus.img");
    writeFileSync(path, handMadeHfsPlus("Hand Made ✓"));
    const expected = expectedProbe(await blkid(path));
    assert.equal(expected?.filesystem, "hfsplus");
    assert.equal(expected?.label, "Hand Made ✓");
    const source = await openSource(path);
    try {
      assert.deepEqual(await probeFilesystem(source), expected);
    } finally {
      await source.close();
    }
  });

  test("nothing recognisable: null, not an error", async () => {
    assert.equal(await probeFilesystem(new MemorySource(Buffer.alloc(1 << 20))), null);
    assert.equal(await probeFilesystem(new MemorySource(Buffer.alloc(512, 0xff))), null);
  });
});

/**
 * The smallest HFS+ volume blkid accepts: a volume header at 1024 whose
 * catalog file starts at block 2 with a header node pointing to a leaf node
 * at block 3 whose first key is the root folder's thread (parent id 1).
 */
export function handMadeHfsPlus(label: string): Buffer {
  const blockSize = 4096;
  const img = Buffer.alloc(16 * blockSize);
  const vh = img.subarray(1024);
  vh.write("H+", 0, "latin1");
  vh.writeUInt16BE(4, 2);
  vh.writeUInt32BE(blockSize, 0x28);
  vh.writeUInt32BE(16, 0x2c);
  Buffer.from("5eedc0ffee123456", "hex").copy(vh, 0x68); // Finder info id: the UUID's seed
  vh.writeBigUInt64BE(2n * BigInt(blockSize), 0x110); // catalog fork: logical size
  vh.writeUInt32BE(2, 0x110 + 12); // total blocks
  vh.writeUInt32BE(2, 0x110 + 16); // extent 0: start block
  vh.writeUInt32BE(2, 0x110 + 20); // extent 0: block count
  const header = img.subarray(2 * blockSize);
  header[8] = 1; // header node
  header.writeUInt16BE(3, 10);
  header.writeUInt16BE(1, 14); // depth
  header.writeUInt32BE(1, 16); // root node
  header.writeUInt32BE(1, 20); // leaf records
  header.writeUInt32BE(1, 24); // first leaf node
  header.writeUInt32BE(1, 28); // last leaf node
  header.writeUInt16BE(blockSize, 32); // node size
  const leaf = img.subarray(3 * blockSize);
  leaf[8] = 0xff; // leaf node
  leaf[9] = 1;
  leaf.writeUInt16BE(1, 10);
  const name = Buffer.from(label, "utf16le").swap16();
  leaf.writeUInt16BE(6 + name.length, 14); // key length
  leaf.writeUInt32BE(1, 16); // parent id: the root's parent
  leaf.writeUInt16BE(name.length / 2, 20);
  name.copy(leaf, 22);
  return img;
}
