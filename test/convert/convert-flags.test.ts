/**
 * convert's writer flags reach the writers: --compress [zlib|zstd] gives a
 * compressed qcow2 that qemu-img check finds clean and qemu-img compare
 * finds identical, --level changes what zstd writes (zstd -t accepts both),
 * --threads does not change the bytes; a flag the format would ignore is a
 * usage error.
 */
import assert from "node:assert/strict";
import { readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import { needs } from "../helpers/env.js";
import { platter, sh } from "../helpers/run.js";
import { tempDir } from "../helpers/tmp.js";

/** 8 MiB: the example disk, text, random bytes, zeros. */
async function diskLike(dir: string): Promise<string> {
  const img = join(dir, "disk.img");
  await sh(`cp examples/disk.img ${img} && (seq 1 400000 | head -c 2M) >> ${img} && head -c 1M /dev/urandom >> ${img} && truncate -s 8M ${img}`);
  return img;
}

test("convert --compress and --compress zstd to qcow2: qemu-img check clean, compare identical, compressed clusters of the asked type", { skip: needs("qemu-img") }, async () => {
  const dir = tempDir();
  const img = await diskLike(dir);
  for (const [flags, type] of [[["--compress"], "zlib"], [["--compress", "zstd"], "zstd"]] as const) {
    const out = join(dir, `${type}.qcow2`);
    const r = await platter(["convert", img, out, ...flags]);
    assert.equal(r.code, 0, r.stderr);
    const check = JSON.parse(await sh(`qemu-img check --output=json ${out}`));
    assert.equal(check["check-errors"], 0);
    assert.equal(check.corruptions ?? 0, 0);
    assert.equal(check.leaks ?? 0, 0);
    assert.ok(check["compressed-clusters"] > 0, `${type}: compressed clusters`);
    await sh(`qemu-img compare -q ${img} ${out}`);
    const info = JSON.parse(await sh(`qemu-img info --output=json ${out}`));
    assert.equal(info["format-specific"].data["compression-type"], type);
    assert.ok(statSync(out).size < statSync(img).size / 2, `${type}: smaller than the raw image`);
  }
});

test("convert --level reaches the zstd writer (level 1 and 19 differ, both pass zstd -t); --threads 1 writes the same bytes as --threads 2", { skip: needs("zstd") }, async () => {
  const dir = tempDir();
  const img = await diskLike(dir);
  const out = (name: string) => join(dir, name);
  for (const [name, flags] of [["l1.zst", ["--level", "1"]], ["l19.zst", ["--level", "19"]], ["t1.zst", ["--threads", "1"]], ["t2.zst", ["--threads", "2"]]] as const) {
    const r = await platter(["convert", img, out(name), ...flags]);
    assert.equal(r.code, 0, r.stderr);
    await sh(`zstd -t -q ${out(name)}`);
    assert.equal((await sh(`zstd -dc ${out(name)} | cmp - ${img} && echo same`)).trim(), "same", name);
  }
  assert.ok(statSync(out("l19.zst")).size < statSync(out("l1.zst")).size, "level 19 compresses more than level 1");
  assert.ok(readFileSync(out("t1.zst")).equals(readFileSync(out("t2.zst"))), "threads do not change the bytes");
});

test("convert refuses flags its output format would ignore, in one line", async () => {
  const dir = tempDir();
  const compress = await platter(["convert", "examples/disk.img", join(dir, "x.zst"), "--compress"]);
  assert.equal(compress.code, 2);
  assert.equal(compress.stderr, "platter: --compress is for qcow2 output, not zstd\n");
  const level = await platter(["convert", "examples/disk.img", join(dir, "x.img"), "--level", "3"]);
  assert.equal(level.code, 2);
  assert.match(level.stderr, /^platter: --level and --threads are for compressed output/);
  const capture = await platter(["capture", "examples/disk.img", join(dir, "y.gz"), "--compress", "zstd"]);
  assert.equal(capture.code, 2);
  assert.equal(capture.stderr, "platter: --compress is for qcow2 output, not gzip\n");
});
