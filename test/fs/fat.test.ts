import assert from "node:assert/strict";
import { join } from "node:path";
import { before, describe, test } from "node:test";
import { needs } from "../helpers/env.js";
import { fixture } from "../helpers/fixtures.js";
import { manifest, project } from "../helpers/manifest.js";
import { platter, sh } from "../helpers/run.js";
import { tempDir } from "../helpers/tmp.js";

const IMAGES: Array<[string, string]> = [
  ["fat12.img", "FAT12 DISK"],
  ["fat16.img", "SIXTEEN"],
  ["fat32.img", "THIRTYTWO"],
];
const MTOOLS = "MTOOLS_SKIP_CHECK=1 TZ=UTC LC_ALL=C.UTF-8";

describe("FAT12/16/32 reader", { skip: needs("mkfs.vfat", "mcopy", "fsck.vfat") }, () => {
  let dir = "";
  before(async () => {
    dir = await fixture("make-fat-images.sh", "fat");
  });

  for (const [image] of IMAGES) {
    test(`extract of ${image} equals mcopy -s -m (long and lowercase names, sizes, bytes, mtimes as UTC)`, async () => {
      const img = join(dir, image);
      const tmp = tempDir();
      const mine = join(tmp, "platter");
      const theirs = join(tmp, "mcopy");
      const r = await platter(["extract", img, "-o", mine, "-q"]);
      assert.equal(r.code, 0, r.stderr);
      await sh(`mkdir ${theirs} && ${MTOOLS} mcopy -s -m -n -i ${img} '::/*' ${theirs}/`);
      const fields = ["type", "size", "content", "mtime"] as const;
      const a = project(manifest(mine), [...fields]);
      const b = project(manifest(theirs), [...fields]);
      // mtools lowercases only ASCII letters of an 8.3 name with the lowercase flag; Linux and
      // Windows lowercase the whole name through the code page (CAF\x90 -> café).
      b["café.txt"] = b["cafÉ.txt"];
      delete b["cafÉ.txt"];
      assert.deepEqual(a, b);
    });
  }

  test("ls shows long names, lowercase 8.3 names, and no deleted entries, like mdir", async () => {
    const img = join(dir, "fat12.img");
    const r = await platter(["ls", img]);
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(r.stdout.trim().split("\n"), [
      "A Long File Name.txt",
      "MiXeD.txt",
      "UPPER.TXT",
      "café.txt",
      "docs",
      "empty",
      "fragmented.bin",
      `${"n".repeat(146)}.txt`,
      "notes.TXT",
      "random-300k.bin",
      "readme.txt",
      "日本語.txt",
    ]);
    const mdir = await sh(`${MTOOLS} mdir -i ${img} ::/`);
    assert.doesNotMatch(mdir, /deleted|filler/i);
  });

  for (const [image] of IMAGES) {
    test(`ls -R of ${image} lists the same paths as mdir -/ -b`, async () => {
      const img = join(dir, image);
      const mine = (await platter(["ls", img, "-R"])).stdout.trim().split("\n").sort();
      const theirs = (await sh(`${MTOOLS} mdir -/ -b -i ${img} ::/`))
        .trim()
        .split("\n")
        .map((l) => l.replace(/^::/, "").replace(/\/$/, "").replace("cafÉ", "café")) // mtools lowercases ASCII only
        .sort();
      assert.deepEqual(mine, theirs);
    });
  }

  test("read-only attribute shows as mode 0444; folders 0755, files 0644", async () => {
    const r = await platter(["ls", join(dir, "fat16.img"), "/docs", "--json"]);
    const modes = Object.fromEntries((JSON.parse(r.stdout) as Array<{ name: string; mode: number }>).map((e) => [e.name, e.mode]));
    assert.deepEqual(modes, { a: 0o755, "note.txt": 0o644, "readonly.txt": 0o444 });
    const attrib = await sh(`${MTOOLS} mattrib -i ${join(dir, "fat16.img")} ::/docs/readonly.txt`);
    assert.match(attrib, /^\s*A?\s*R/);
  });

  for (const [image, label] of IMAGES) {
    test(`label of ${image} is what mlabel shows ("${label}")`, async () => {
      const img = join(dir, image);
      const shown = await sh(`${MTOOLS} mlabel -s -i ${img} ::`);
      assert.equal(shown.trim(), `Volume label is ${label}`);
      const { openSource } = await import("../../src/io/file-source.js");
      const { openFat } = await import("../../src/fs/fat/index.js");
      const src = await openSource(img);
      try {
        const fs = await openFat(src);
        assert.equal(fs.label, label);
        assert.equal(`FAT${fs.fatBits}`, image.slice(0, 5).toUpperCase());
      } finally {
        await src.close();
      }
    });
  }

  test("cat of a fragmented file (its chain jumps a freed gap) equals mcopy to stdout", async () => {
    const img = join(dir, "fat16.img");
    const mine = await platter(["cat", img, "/fragmented.bin"]);
    const theirs = await sh(`${MTOOLS} mcopy -i ${img} ::/fragmented.bin - | sha256sum`);
    const { createHash } = await import("node:crypto");
    assert.equal(createHash("sha256").update(mine.stdoutBytes).digest("hex"), theirs.split(" ")[0]);
    // Case-insensitive lookup, as FAT names are:
    assert.equal((await platter(["cat", img, "/DOCS/NOTE.TXT"])).stdout, "note\n");
  });
});
