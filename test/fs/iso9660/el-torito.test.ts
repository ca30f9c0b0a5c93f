/**
 * The El Torito boot catalogue is read only by `platter info`, and read
 * within bounds: a crafted catalogue (a section running past it, extension
 * entries to its very end, a catalogue past the image's end) is a warning
 * naming the catalogue and the entry there, and nothing to ls, cat or extract.
 */
import assert from "node:assert/strict";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, test } from "node:test";
import { CorruptImageError } from "../../../src/errors.js";
import { decodeBootCatalog, encodeBootCatalog, PLATFORM_EFI, PLATFORM_X86, type BootEntry } from "../../../src/fs/iso9660/el-torito.js";
import { needs } from "../../helpers/env.js";
import { platter } from "../../helpers/run.js";
import { tempDir } from "../../helpers/tmp.js";
import { xorrisoImage } from "./craft.js";

const entry = (platform: number): BootEntry => ({ platform, bootable: true, mediaType: 0, loadSegment: 0, systemType: 0, sectorCount: 4, loadRba: 30 });

/** A catalogue with a default entry and a UEFI section of `count` entries; the rest of the sector as given. */
function catalogue(count: number, fill = 0): Buffer {
  const buf = encodeBootCatalog({ platform: PLATFORM_X86, idString: "", entries: [entry(PLATFORM_X86), entry(PLATFORM_EFI)] });
  buf.writeUInt16LE(count, 64 + 2);
  buf.fill(fill, 128);
  return buf;
}

describe("El Torito catalogue decoder", () => {
  test("a section whose entry count runs past the catalogue is corrupt, naming the entry", () => {
    assert.throws(() => decodeBootCatalog(catalogue(100), "cat"), (err) => {
      assert.ok(err instanceof CorruptImageError);
      assert.equal(err.message, "cat: entry 62 of the 100 in section 1 would be at byte 2048, past the catalogue's 2048 bytes");
      return true;
    });
  });

  test("extension entries up to the catalogue's end: a clean error, not a read past the buffer", () => {
    // Before: the entries were skipped up to byte 2048 and the next entry was read there (a RangeError).
    assert.throws(() => decodeBootCatalog(catalogue(2, 0x44), "cat"), /^CorruptImageError: cat: entry 2 of the 2 in section 1 would be at byte 2048/);
  });
});

describe("a crafted boot catalogue does not stop ls and cat", { skip: needs("xorriso") }, () => {
  async function bootable() {
    const made = await xorrisoImage({ "boot.bin": Buffer.alloc(2048, 0xb0), "hello.txt": "hello\n" }, { args: "-b boot.bin -no-emul-boot -c boot.cat" });
    const catalogBlock = made.image.readUInt32LE(17 * 2048 + 71);
    return { ...made, catalogBlock };
  }

  test("extension entries to the catalogue's end: ls and cat work, info warns naming the catalogue and the entry", async () => {
    const { image, catalogBlock } = await bootable();
    // Section header after the default entry with 2 entries, then extension entries to the end of the sector.
    const at = catalogBlock * 2048;
    image.fill(0x44, at + 96, at + 2048);
    image[at + 64] = 0x91;
    image[at + 65] = PLATFORM_EFI;
    image.writeUInt16LE(2, at + 66);
    const iso = join(tempDir(), "bad-catalog.iso");
    writeFileSync(iso, image);
    const ls = await platter(["ls", iso]);
    assert.equal(ls.code, 0, ls.stderr);
    assert.equal(ls.stdout, "boot.bin\nboot.cat\nhello.txt\n");
    assert.equal((await platter(["cat", iso, "/hello.txt"])).stdout, "hello\n");
    const info = await platter(["info", iso]);
    assert.equal(info.code, 0, info.stderr);
    assert.equal(
      info.stderr,
      `platter: warning: ${iso}: El Torito boot catalogue at block ${catalogBlock}: entry 2 of the 2 in section 1 would be at byte 2048, past the catalogue's 2048 bytes\n`,
    );
  });

  test("a catalogue past the end of the image: ls works, info warns", async () => {
    const { image } = await bootable();
    image.writeUInt32LE(1_000_000, 17 * 2048 + 71);
    const iso = join(tempDir(), "far-catalog.iso");
    writeFileSync(iso, image);
    assert.equal((await platter(["ls", iso])).stdout, "boot.bin\nboot.cat\nhello.txt\n");
    const info = await platter(["info", iso, "--json"]);
    assert.equal(info.code, 0, info.stderr);
    assert.match(info.stderr, /^platter: warning: .*far-catalog\.iso: El Torito boot catalogue at block 1000000: lies past the end of the image \(\d+ blocks\)\n$/);
    assert.equal(JSON.parse(info.stdout).iso9660.bootCatalog, null);
  });
});
