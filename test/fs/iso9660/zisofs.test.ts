/**
 * zisofs files (Rock Ridge ZF) in images xorriso compressed itself
 * (test/fixtures/make-zisofs-iso.sh): read inflated, byte for byte what the
 * source folder holds and what `xorriso -osirrox on -extract` (and, for
 * zisofs v1, bsdtar) extracts; random access inflates only the blocks asked
 * for; and crafted files that lie (pointers, bombs, headers) end in one clean
 * error naming the file.
 */
import assert from "node:assert/strict";
import { readdirSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { describe, test } from "node:test";
import { deflateSync } from "node:zlib";
import { CorruptImageError, UnsupportedError } from "../../../src/errors.js";
import { openIso9660, type Iso9660FileSystem, type IsoNode } from "../../../src/fs/iso9660/index.js";
import { CountingSource } from "../../../src/io/counting-source.js";
import { openSource } from "../../../src/io/file-source.js";
import { needs } from "../../helpers/env.js";
import { fuzzImage } from "../../helpers/fs-fuzz.js";
import { fixture } from "../../helpers/fixtures.js";
import { platter, run, sh } from "../../helpers/run.js";
import { tempDir } from "../../helpers/tmp.js";
import { nodeAt, openImage, recordExtent, recordOffset } from "./craft.js";

const FILES = ["numbers.txt", "zeros.bin", "sub/text-zeros-text.txt", "random.bin", "sub/one-block.txt", "small.txt", "empty"];

function zisofsIso(version: "v1" | "v2"): Promise<string> {
  return fixture("make-zisofs-iso.sh", `zisofs-${version}.iso`, [version]);
}

async function readAll(fs: Iso9660FileSystem, node: IsoNode): Promise<Buffer> {
  const parts: Buffer[] = [];
  for (let o = 0; o < node.stat.size; o += 100_000) parts.push(await fs.read(node, o, Math.min(100_000, node.stat.size - o)));
  return Buffer.concat(parts);
}

for (const version of ["v1", "v2"] as const) {
  describe(`zisofs ${version} files of an xorriso image`, { skip: needs("xorriso") }, () => {
    test("stat.size is the real size and read() gives the source folder's bytes, as xorriso -osirrox extracts them", async () => {
      const iso = await zisofsIso(version);
      const out = join(tempDir(), "xorriso");
      const x = await run("xorriso", ["-indev", iso, "-osirrox", "on", "-extract", "/", out]);
      assert.equal(x.code, 0, x.stderr);
      const source = await openSource(iso);
      try {
        const fs = await openIso9660(source);
        for (const path of FILES) {
          const node = await nodeAt(fs, path);
          const expected = readFileSync(join(`${iso}.src`, path));
          assert.equal(node.stat.size, statSync(join(`${iso}.src`, path)).size, path);
          assert.ok((await readAll(fs, node)).equals(expected), `${path} differs from the source`);
          assert.ok(readFileSync(join(out, path)).equals(expected), `${path}: xorriso extracts something else`);
        }
        // The fixture is what it claims: most files really are stored compressed.
        const compressed = await Promise.all(FILES.map(async (p) => (await nodeAt(fs, p)).zisofs !== undefined));
        assert.deepEqual(compressed, [true, true, true, false, true, false, false]);
        assert.equal((await nodeAt(fs, "numbers.txt")).zisofs?.version, version === "v1" ? 1 : 2);
      } finally {
        await source.close();
      }
    });

    test("a 4 KiB read in the middle inflates one block: the image is read for little more than that block", async () => {
      const iso = await zisofsIso(version);
      const counting = new CountingSource(await openSource(iso));
      try {
        const fs = await openIso9660(counting);
        const node = await nodeAt(fs, "numbers.txt");
        const stored = node.sections[0].length;
        const expected = readFileSync(join(`${iso}.src`, "numbers.txt"));
        counting.bytesRead = 0;
        const offset = 700_001;
        assert.ok((await fs.read(node, offset, 4096)).equals(expected.subarray(offset, offset + 4096)));
        const blockSize = 2 ** (node.zisofs?.blockLog2 ?? 0);
        assert.ok(counting.bytesRead < blockSize / 2, `read ${counting.bytesRead} bytes of a ${stored}-byte compressed file`);

        // Read front to back in 4 KiB steps: each compressed block is read (and inflated) once.
        counting.bytesRead = 0;
        const steps = Math.ceil(node.stat.size / 4096);
        for (let o = 0; o < node.stat.size; o += 4096) await fs.read(node, o, Math.min(4096, node.stat.size - o));
        assert.ok(counting.bytesRead < stored + steps * 64, `read ${counting.bytesRead} bytes for ${stored} stored`);
      } finally {
        await counting.close();
      }
    });
  });
}

describe("zisofs against bsdtar and the command line", { skip: needs("xorriso", "bsdtar") }, () => {
  test("platter extract of the zisofs v1 image equals bsdtar -x and the source; ls -l shows real sizes", async () => {
    const iso = await zisofsIso("v1");
    const dir = tempDir();
    const r = await platter(["extract", iso, "-o", join(dir, "platter"), "-q"]);
    assert.equal(r.code, 0, r.stderr);
    await sh(`mkdir ${dir}/bsdtar && bsdtar -xf ${iso} -C ${dir}/bsdtar`);
    for (const path of FILES) {
      const ours = readFileSync(join(dir, "platter", path));
      assert.ok(ours.equals(readFileSync(join(dir, "bsdtar", path))), `${path}: bsdtar extracts something else`);
      assert.ok(ours.equals(readFileSync(join(`${iso}.src`, path))), path);
    }
    const ls = (await platter(["ls", iso, "-l"])).stdout;
    assert.match(ls, new RegExp(`\\s${statSync(join(`${iso}.src`, "numbers.txt")).size}\\s.*numbers\\.txt\\n`));
    assert.deepEqual(readdirSync(join(dir, "platter")).sort(), readdirSync(`${iso}.src`).sort());
  });
});

/** The v1 image in memory, and where numbers.txt's ZF entry and stored bytes are in it. */
async function craftable() {
  const image = readFileSync(await zisofsIso("v1"));
  const record = recordOffset(image, "NUMBERS.TXT;1");
  const zf = image.indexOf(Buffer.from("ZF"), record);
  assert.ok(zf > record && zf < record + image[record], "ZF entry in the record");
  const stored = recordExtent(image, record) * 2048;
  const pointer = (i: number) => stored + 16 + 4 * i;
  return { image, zf, stored, pointer };
}

async function readFails(image: Buffer, offset: number, match: RegExp, kind: typeof CorruptImageError | typeof UnsupportedError = CorruptImageError) {
  const fs = await openImage(image, "bad.iso");
  const node = await nodeAt(fs, "numbers.txt");
  await assert.rejects(fs.read(node, offset, 10), (err) => {
    assert.ok(err instanceof kind, String(err));
    assert.match(err.message, /^bad\.iso: directory at block \d+: 'numbers\.txt': /);
    assert.match(err.message, match);
    return true;
  });
}

describe("hostile zisofs files", { skip: needs("xorriso") }, () => {
  test("a block pointer past the data, or going backwards, is corrupt", async () => {
    const c = await craftable();
    c.image.writeUInt32LE(2 ** 31, c.pointer(5));
    await readFails(c.image, 4 * 32768 + 5, /zisofs block 4 lies at bytes \d+\.\.2147483648 of \d+/);
    const d = await craftable();
    d.image.writeUInt32LE(d.image.readUInt32LE(d.pointer(2)) - 1, d.pointer(3));
    await readFails(d.image, 2 * 32768, /zisofs block 2 lies at bytes/);
  });

  test("a pointer pair further apart than a compressed block can be is refused before it is read", async () => {
    const c = await craftable();
    // Blocks 0..2 claimed as one: more than zlib could ever need for 32 KiB.
    c.image.writeUInt32LE(c.image.readUInt32LE(c.pointer(3)), c.pointer(1));
    await readFails(c.image, 0, /zisofs block 0 lies at .*a block takes at most 32791\)$/);
  });

  test("a bomb block that inflates past the block size, and a block that inflates short, are corrupt", async () => {
    const c = await craftable();
    const bomb = deflateSync(Buffer.alloc(16 << 20));
    const start = c.image.readUInt32LE(c.pointer(0));
    bomb.copy(c.image, c.stored + start);
    c.image.writeUInt32LE(start + bomb.length, c.pointer(1));
    await readFails(c.image, 0, /zisofs block 0: corrupt zlib block: it expands to more than 32768 bytes$/);
    const d = await craftable();
    const short = deflateSync(Buffer.alloc(100, "a"));
    short.copy(d.image, d.stored + start);
    d.image.writeUInt32LE(start + short.length, d.pointer(1));
    await readFails(d.image, 0, /zisofs block 0: inflates to 100 bytes, not 32768$/);
  });

  test("a header that does not match the ZF entry, or stored data too short for its header and pointers", async () => {
    const c = await craftable();
    c.image[c.stored] ^= 0xff;
    await readFails(c.image, 0, /the zisofs file header does not match its ZF entry/);
    const d = await craftable();
    const record = recordOffset(d.image, "NUMBERS.TXT;1");
    d.image.writeUInt32LE(10, record + 10);
    d.image.writeUInt32BE(10, record + 14);
    await readFails(d.image, 0, /zisofs header and block pointers \(180 bytes\) run past the stored data \(10 bytes\)/);
  });

  test("a ZF entry with a block size no writer uses is corrupt; an algorithm platter does not know is unsupported", async () => {
    const c = await craftable();
    c.image[c.zf + 7] = 25;
    await readFails(c.image, 0, /zisofs block size 2\^25 \(readers know 2\^15 to 2\^17\)$/);
    const d = await craftable();
    d.image.write("XZ", d.zf + 4, "latin1");
    d.image[d.zf + 3] = 2;
    d.image[d.zf + 6] = 24 / 4;
    d.image.writeUInt32LE(0, d.zf + 12); // zisofs2's size is 64-bit little-endian: the v1 size's big-endian half goes

    await readFails(d.image, 0, /compressed with zisofs algorithm 'XZ'; platter reads zlib/, UnsupportedError);
  });

  test("the fuzzer finds only clean errors in a zisofs image", async () => {
    const c = await craftable();
    const end = c.stored + c.image.readUInt32LE(c.pointer(40));
    const result = await fuzzImage(c.image, (source) => openIso9660(source), { copies: 200, hot: [[c.stored, end]], deepEvery: 1 });
    assert.ok(result.failed > 0, "no damage was noticed");
  });
});
