/**
 * `hash` and `capture SOURCE` read a compressed or virtual-disk image as the
 * disk it holds, as the real tools decode it: `zstd -dc | sha256sum`,
 * `qemu-img convert -O raw`.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { describe, test } from "node:test";
import { needs } from "../helpers/env.js";
import { CLI, platter, sh } from "../helpers/run.js";
import { tempDir } from "../helpers/tmp.js";

/** A 6 MiB disk-like file: the example disk, zeros, random bytes, text. */
async function diskLike(dir: string): Promise<string> {
  const img = join(dir, "disk.img");
  await sh(
    `cp examples/disk.img ${img} && truncate -s 5M ${img} && head -c 700000 /dev/urandom >> ${img}` +
      ` && (seq 1 60000 | head -c 300000) >> ${img} && truncate -s 6M ${img}`,
  );
  return img;
}

const sha = async (cmd: string) => (await sh(`${cmd} | sha256sum`)).split(" ")[0];

describe("hash and capture read through every image layer", () => {
  test("platter hash of .zst .xz .gz .bz2 equals `<tool> -dc | sha256sum`; --raw equals sha256sum of the file", { skip: needs("zstd", "xz", "gzip", "bzip2") }, async () => {
    const dir = tempDir();
    const img = await diskLike(dir);
    const expected = await sha(`cat ${img}`);
    for (const [tool, ext] of [["zstd -q", "zst"], ["xz -T2", "xz"], ["gzip", "gz"], ["bzip2", "bz2"]]) {
      const packed = `${img}.${ext}`;
      await sh(`${tool} -c ${img} > ${packed}`);
      const decoder = `${tool.split(" ")[0]} -dc ${packed}`;
      assert.equal(await sha(decoder), expected, `${decoder} round-trips`);
      const r = await platter(["hash", packed]);
      assert.equal(r.code, 0, r.stderr);
      assert.equal(r.stdout, `${expected}  ${packed}\n`, ext);
      const raw = await platter(["hash", packed, "--raw"]);
      assert.equal(raw.stdout, await sh(`sha256sum ${packed}`), `${ext} --raw`);
    }
  });

  test("platter hash of a stream stays the stream's bytes (a compressed pipe is not decoded)", { skip: needs("zstd") }, async () => {
    const dir = tempDir();
    const img = await diskLike(dir);
    await sh(`zstd -q -c ${img} > ${img}.zst`);
    assert.equal(await sh(`cat ${img}.zst | node ${CLI} hash -`), `${(await sh(`sha256sum < ${img}.zst`)).split(" ")[0]}  -\n`);
  });

  test("capture of a compressed qcow2 copies the guest bytes: equal to `qemu-img convert -O raw`, hash and mapfile included", { skip: needs("qemu-img", "ddrescuelog") }, async () => {
    const dir = tempDir();
    const img = await diskLike(dir);
    const qcow2 = join(dir, "disk.qcow2");
    await sh(`qemu-img convert -q -c -f raw -O qcow2 ${img} ${qcow2} && qemu-img convert -q -f qcow2 -O raw ${qcow2} ${dir}/qemu.raw`);
    const expected = await sha(`cat ${dir}/qemu.raw`);
    const out = join(dir, "out.img");
    const map = join(dir, "out.map");
    const r = await platter(["capture", qcow2, out, "--map", map, "--hash", "sha256", "--json"]);
    assert.equal(r.code, 0, r.stderr);
    const result = JSON.parse(r.stdout);
    assert.equal(result.size, 6 << 20);
    assert.equal(result.hashes.sha256, expected);
    await sh(`cmp ${out} ${dir}/qemu.raw`);
    assert.equal((await sh(`ddrescuelog -t ${map} | grep -c 'rescued: *6291 kB'`)).trim(), "1");
  });

  test("capture of a .zst image with --skip/--length takes the window of the decoded disk; --raw copies the file", { skip: needs("zstd") }, async () => {
    const dir = tempDir();
    const img = await diskLike(dir);
    await sh(`zstd -q -c ${img} > ${img}.zst`);
    const r = await platter(["capture", `${img}.zst`, join(dir, "part.img"), "--skip", "1MiB", "--length", "2MiB", "-q"]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(await sha(`cat ${dir}/part.img`), await sha(`dd if=${img} bs=1M skip=1 count=2 status=none`));
    const raw = await platter(["capture", `${img}.zst`, join(dir, "copy.zst.img"), "--raw", "-q"]);
    assert.equal(raw.code, 0, raw.stderr);
    await sh(`cmp ${img}.zst ${dir}/copy.zst.img`);
  });
});

test("platter hash --part N hashes one partition, as dd of its sectors | sha256sum, also inside a .zst; a stream is refused", { skip: needs("zstd") }, async () => {
  const dir = tempDir();
  const expected = await sha(`dd if=examples/disk.img bs=512 skip=4096 count=4096 status=none`);
  const raw = await platter(["hash", "examples/disk.img", "--part", "2"]);
  assert.equal(raw.code, 0, raw.stderr);
  assert.equal(raw.stdout, `${expected}  examples/disk.img\n`);
  await sh(`zstd -q -c examples/disk.img > ${dir}/disk.img.zst`);
  assert.equal((await platter(["hash", `${dir}/disk.img.zst`, "--part", "2"])).stdout, `${expected}  ${dir}/disk.img.zst\n`);
  const missing = await platter(["hash", "examples/disk.img", "--part", "7"]);
  assert.equal(missing.code, 2, missing.stderr);
  const stream = await sh(`cat examples/disk.img | node ${CLI} hash - --part 2 2>&1; echo "exit $?"`);
  assert.match(stream, /^platter: --part needs the partition table.*\nexit 2\n$/);
});
