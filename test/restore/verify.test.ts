/**
 * verify compares images byte for byte through every layer: the offsets and
 * values it lists, and its count of differing bytes, are what `cmp -l` says
 * about the raw bytes. No root needed.
 */
import assert from "node:assert/strict";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, test } from "node:test";
import { needs } from "../helpers/env.js";
import { platter, run, sh } from "../helpers/run.js";
import { tempDir } from "../helpers/tmp.js";

const MiB = 1 << 20;

/** cmp -l: one line per differing byte, 1-based offset and octal values. */
async function cmpList(a: string, b: string): Promise<Array<{ offset: number; image: number; target: number }>> {
  const r = await run("cmp", ["-l", a, b]);
  return r.stdout
    .trim()
    .split("\n")
    .filter(Boolean)
    .map((line) => {
      const [offset, x, y] = line.trim().split(/\s+/);
      return { offset: Number(offset) - 1, image: parseInt(x, 8), target: parseInt(y, 8) };
    });
}

async function flipBytes(path: string, offsets: number[]): Promise<void> {
  for (const offset of offsets) {
    await sh(`v=$(od -An -tu1 -j ${offset} -N1 ${path}); printf "\\\\$(printf %o $(( (v ^ 255) )))" | dd of=${path} bs=1 seek=${offset} conv=notrunc status=none`);
  }
}

describe("verify", { skip: needs("cmp", "zstd", "qemu-img") }, () => {
  test("one flipped byte: exit 1, its offset and both values, as cmp -l lists them", async () => {
    const dir = tempDir();
    const [a, b] = [join(dir, "a.img"), join(dir, "b.img")];
    await sh(`head -c ${8 * MiB} /dev/urandom > ${a} && cp ${a} ${b}`);
    await flipBytes(b, [3 * MiB + 17]);
    const r = await platter(["verify", a, b, "--json"]);
    assert.equal(r.code, 1, r.stderr);
    const result = JSON.parse(r.stdout);
    assert.deepEqual(result.differences, await cmpList(a, b));
    assert.equal(result.differingBytes, 1);
    assert.equal(result.equal, false);
    const text = await platter(["verify", a, b]);
    assert.equal(text.code, 1);
    assert.match(text.stdout, new RegExp(`^${a} and ${b} differ: 1 byte\\(s\\) of ${8 * MiB} compared\\n +offset +image +target\\n +${3 * MiB + 17} +0x`));
  });

  test("many differences: all counted, the first ten listed, the same as cmp -l", async () => {
    const dir = tempDir();
    const [a, b] = [join(dir, "a.img"), join(dir, "b.img")];
    await sh(`head -c ${6 * MiB} /dev/urandom > ${a} && cp ${a} ${b}`);
    const offsets = Array.from({ length: 25 }, (_, i) => i * 200_003 + 5);
    await flipBytes(b, offsets);
    const r = await platter(["verify", a, b, "--json"]);
    assert.equal(r.code, 1);
    const result = JSON.parse(r.stdout);
    const expected = await cmpList(a, b);
    assert.equal(result.differingBytes, expected.length);
    assert.deepEqual(result.differences, expected.slice(0, 10));
  });

  test("a .zst and a qcow2 of an image (zstd, qemu-img) are that image: exit 0", async () => {
    const dir = tempDir();
    const img = join(dir, "disk.img");
    await sh(`truncate -s 24M ${img} && dd if=/dev/urandom of=${img} bs=1M seek=3 count=5 conv=notrunc status=none`);
    await sh(`zstd -q ${img} -o ${img}.zst && qemu-img convert -O qcow2 ${img} ${img}.qcow2`);
    for (const [x, y] of [
      [img, `${img}.zst`],
      [`${img}.qcow2`, img],
      [`${img}.zst`, `${img}.qcow2`],
    ]) {
      const r = await platter(["verify", x, y]);
      assert.equal(r.code, 0, r.stdout + r.stderr);
      assert.equal(r.stdout, `${x} and ${y} are identical over 24 MiB (${24 * MiB} bytes)\n`);
    }
  });

  test("different sizes: the common part compared, the difference said, exit 1", async () => {
    const dir = tempDir();
    const [a, b] = [join(dir, "a.img"), join(dir, "b.img")];
    writeFileSync(a, Buffer.alloc(MiB, 3));
    writeFileSync(b, Buffer.alloc(MiB + 512, 3));
    const r = await platter(["verify", a, b]);
    assert.equal(r.code, 1);
    assert.equal(
      r.stdout,
      `${a} and ${b} are identical over 1 MiB (${MiB} bytes)\nsizes differ: ${b} is 512 byte(s) longer than ${a} (${MiB} and ${MiB + 512} bytes)\n`,
    );
    const json = JSON.parse((await platter(["verify", b, a, "--json"])).stdout);
    assert.deepEqual([json.imageSize, json.targetSize, json.compared, json.differingBytes, json.equal], [MiB + 512, MiB, MiB, 0, false]);
  });
});
