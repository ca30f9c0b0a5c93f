/** convert's own rules, on raw images (each container format's tests check its output with the real tools). */
import assert from "node:assert/strict";
import { readFileSync, readdirSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import { platter, run } from "../helpers/run.js";
import { tempDir } from "../helpers/tmp.js";

const EXAMPLE = "examples/disk.img";

test("convert raw to raw --sparse: identical bytes, zero runs left as holes (as qemu-img convert -O raw does)", async () => {
  const dir = tempDir();
  const dest = join(dir, "copy.img");
  const r = await platter(["convert", EXAMPLE, dest, "--sparse", "--json"]);
  assert.equal(r.code, 0, r.stderr);
  assert.ok(readFileSync(dest).equals(readFileSync(EXAMPLE)));
  const st = statSync(dest);
  assert.ok(st.blocks * 512 < st.size / 4, `sparse: ${st.blocks * 512} bytes allocated of ${st.size}`);
  const json = JSON.parse(r.stdout);
  assert.deepEqual([json.from, json.to, json.size], [["raw"], "raw", 4194304]);
});

test("convert to raw leaves none of DEST's pages in the page cache (fincore), from a raw image (written through the cache, dropped once flushed) and from a .zst (O_DIRECT); cmp finds the source's bytes", async (t) => {
  const dir = tempDir();
  const probe = await run("dd", ["if=/dev/zero", `of=${join(dir, "probe")}`, "bs=4096", "count=1", "oflag=direct"]);
  if (probe.code !== 0) return t.skip(`the file system of ${dir} refuses O_DIRECT (dd oflag=direct: ${probe.stderr.trim()})`);
  const zst = join(dir, "disk.img.zst");
  assert.equal((await platter(["convert", EXAMPLE, zst])).code, 0);
  for (const source of [EXAMPLE, zst]) {
    const dest = join(dir, "copy.img");
    const r = await platter(["convert", source, dest, "--force"]);
    assert.equal(r.code, 0, r.stderr);
    const cached = await run("fincore", ["--bytes", "--noheadings", "--output", "RES", dest]);
    assert.equal(cached.code, 0, cached.stderr);
    assert.equal(Number(cached.stdout.trim()), 0, `${source}: no page of DEST in the page cache`);
    assert.equal((await run("cmp", [EXAMPLE, dest])).code, 0, source);
  }
});

test("convert refuses an existing DEST without --force, DEST = SOURCE, a folder, and an unknown --to; nothing is left behind", async () => {
  const dir = tempDir();
  const dest = join(dir, "old.img");
  writeFileSync(dest, "keep me");
  const exists = await platter(["convert", EXAMPLE, dest]);
  assert.equal(exists.code, 2);
  assert.match(exists.stderr, /^platter: .*old\.img exists; add --force to replace it\n$/);
  assert.equal(readFileSync(dest, "utf8"), "keep me");
  const self = await platter(["convert", dest, dest, "--force"]);
  assert.equal(self.code, 2);
  assert.match(self.stderr, /refusing to write to .*: it is the source/);
  assert.equal(readFileSync(dest, "utf8"), "keep me");
  const folder = await platter(["convert", EXAMPLE, dir]);
  assert.equal(folder.code, 2);
  assert.match(folder.stderr, /is a directory/);
  const unknown = await platter(["convert", EXAMPLE, join(dir, "x.img"), "--to", "floppy"]);
  assert.equal(unknown.code, 2);
  assert.match(unknown.stderr, /--to floppy: unknown output format/);
  const replaced = await platter(["convert", EXAMPLE, dest, "--force"]);
  assert.equal(replaced.code, 0, replaced.stderr);
  assert.ok(readFileSync(dest).equals(readFileSync(EXAMPLE)));
  assert.deepEqual(readdirSync(dir).sort(), ["old.img"], "no temporary file left");
});
