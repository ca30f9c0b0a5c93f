/**
 * Directory record fields real writers leave at zero, crafted into an
 * xorriso image: an extended attribute record before the data (ECMA-119
 * 9.1.2 / 6.4.4.1: the data starts that many blocks into the extent; xorriso
 * reads it so), interleaved files (6.4.3: units of file data between gaps;
 * libisofs refuses them, Linux shows them empty), and records that share an
 * extent without being the same file.
 */
import assert from "node:assert/strict";
import { linkSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, test } from "node:test";
import { CorruptImageError, UnsupportedError } from "../../../src/errors.js";
import { needs } from "../../helpers/env.js";
import { run } from "../../helpers/run.js";
import { tempDir } from "../../helpers/tmp.js";
import { nodeAt, openImage, patchRecord, putBlock, recordExtent, recordOffset, xorrisoImage } from "./craft.js";

const BLOCK = 2048;

describe("ISO 9660 directory record fields", { skip: needs("xorriso") }, () => {
  test("an extended attribute record: the data starts EAR-length blocks into the extent, as xorriso reads it", async () => {
    const second = "second file, read through an EAR\n";
    const { image } = await xorrisoImage({ "a.txt": "first file\n", "b.txt": second });
    const b = recordOffset(image, "B.TXT;1");
    // One block of EAR in front of b.txt's data: the extent starts a block earlier.
    patchRecord(image, b, { extAttrLength: 1, extent: recordExtent(image, b) - 1 });
    const fs = await openImage(image);
    const node = await nodeAt(fs, "/b.txt");
    assert.equal(node.stat.size, second.length);
    assert.equal((await fs.read(node, 0, second.length)).toString(), second);

    const dir = tempDir();
    const patched = join(dir, "ear.iso");
    await run("bash", ["-c", `cat > ${patched}`], { input: image });
    const x = await run("xorriso", ["-indev", patched, "-osirrox", "on", "-extract", "/b.txt", join(dir, "b.txt")]);
    assert.equal(x.code, 0, x.stderr);
    assert.equal(readFileSync(join(dir, "b.txt"), "utf8"), second);
  });

  test("an interleaved file reads its units in order and skips the gaps (ECMA-119 6.4.3)", async () => {
    const fill = (ch: string) => Buffer.alloc(BLOCK, ch);
    const { image } = await xorrisoImage({ "inter.bin": Buffer.concat(["A", "x", "B", "x", "C"].map(fill)) });
    const at = recordOffset(image, "INTER.BIN;1");
    // Units of one block, gaps of one block; the last unit is partly used.
    patchRecord(image, at, { fileUnitSize: 1, interleaveGap: 1, dataLength: 3 * BLOCK - 100 });
    const fs = await openImage(image);
    const node = await nodeAt(fs, "/inter.bin");
    const expected = Buffer.concat([fill("A"), fill("B"), fill("C").subarray(0, BLOCK - 100)]);
    assert.ok((await fs.read(node, 0, node.stat.size)).equals(expected));
    // Random access across a unit boundary.
    assert.equal((await fs.read(node, BLOCK - 2, 4)).toString(), "AABB");
    assert.deepEqual(await fs.dataRanges(node), [[0, expected.length]]);
  });

  test("units of two blocks with gaps of three blocks", async () => {
    const blocks = ["A", "B", "x", "x", "x", "C", "D", "x", "x", "x", "E"];
    const { image } = await xorrisoImage({ "inter.bin": Buffer.concat(blocks.map((ch) => Buffer.alloc(BLOCK, ch))) });
    patchRecord(image, recordOffset(image, "INTER.BIN;1"), { fileUnitSize: 2, interleaveGap: 3, dataLength: 5 * BLOCK });
    const fs = await openImage(image);
    const node = await nodeAt(fs, "/inter.bin");
    const text = (await fs.read(node, 0, node.stat.size)).toString("latin1");
    assert.equal(text, ["A", "B", "C", "D", "E"].map((ch) => ch.repeat(BLOCK)).join(""));
  });

  test("a gap without units is corrupt, and an interleaved file with an EAR is refused, each in one line", async () => {
    const { image } = await xorrisoImage({ "gap.bin": Buffer.alloc(4 * BLOCK, 1), "ear.bin": Buffer.alloc(4 * BLOCK, 2) });
    patchRecord(image, recordOffset(image, "GAP.BIN;1"), { interleaveGap: 1 });
    const ear = recordOffset(image, "EAR.BIN;1");
    patchRecord(image, ear, { fileUnitSize: 1, interleaveGap: 1, extAttrLength: 1, dataLength: BLOCK });
    const fs = await openImage(image);
    await assert.rejects(fs.read(await nodeAt(fs, "/gap.bin"), 0, 10), (err) => {
      assert.ok(err instanceof CorruptImageError);
      assert.match(err.message, /^crafted\.iso: directory at block \d+: 'gap\.bin': interleave gap of 1 blocks without a file unit size$/);
      return true;
    });
    await assert.rejects(fs.read(await nodeAt(fs, "/ear.bin"), 0, 10), (err) => {
      assert.ok(err instanceof UnsupportedError);
      assert.match(err.message, /'ear\.bin': an interleaved file with an extended attribute record, which platter does not read$/);
      return true;
    });
  });

  test("records sharing an extent are one file only when all else agrees: a hard link is, a shorter file is not", async () => {
    const { image } = await xorrisoImage({ "long.txt": "the same start, then more\n", "short.txt": "other\n", a: "linked\n" }, {
      prepare: (src) => linkSync(join(src, "a"), join(src, "b")),
    });
    const long = recordOffset(image, "LONG.TXT;1");
    patchRecord(image, recordOffset(image, "SHORT.TXT;1"), { extent: recordExtent(image, long), dataLength: "the same".length });
    const fs = await openImage(image);
    const [l, s, a, b] = await Promise.all(["/long.txt", "/short.txt", "/a", "/b"].map((p) => nodeAt(fs, p)));
    assert.notEqual(l.stat.id, s.stat.id);
    assert.equal((await fs.read(s, 0, s.stat.size)).toString(), "the same");
    assert.ok(a.stat.id !== null && a.stat.nlink === 2);
    assert.equal(a.stat.id, b.stat.id);
  });
});

describe("extended attribute records elsewhere", { skip: needs("xorriso") }, () => {
  test("a directory's EAR: its records start after it", async () => {
    const { image } = await xorrisoImage({ "sub/inside.txt": "inside\n" });
    const sub = recordOffset(image, "SUB");
    const extent = recordExtent(image, sub);
    // Move the directory one block on to make room for an EAR in front of it (the block after is not inside.txt's data).
    assert.notEqual(recordExtent(image, recordOffset(image, "INSIDE.TXT;1")), extent + 1);
    const records = Buffer.from(image.subarray(extent * BLOCK, (extent + 1) * BLOCK));
    putBlock(image, extent + 1, records);
    putBlock(image, extent, Buffer.alloc(BLOCK, 0xee));
    patchRecord(image, sub, { extAttrLength: 1 });
    const fs = await openImage(image);
    const node = await nodeAt(fs, "/sub/inside.txt");
    assert.equal((await fs.read(node, 0, node.stat.size)).toString(), "inside\n");
  });
});
