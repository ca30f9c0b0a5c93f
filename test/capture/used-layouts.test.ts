/**
 * capture --used-only on the layouts mkfs can make, checked block by block
 * against e2fsprogs: each image is filled with junk before mkfs.ext4 -d (or
 * mkfs.vfat + mcopy), which leave free space as it was. The capture must
 * equal the source with exactly the blocks dumpe2fs lists as free zeroed:
 * BLOCK_UNINIT groups (whose bitmaps mkfs never wrote, and whose backup
 * superblocks and descriptors are used all the same), flex_bg, meta_bg,
 * bigalloc clusters, 1/2/4 KiB blocks, ext2 without descriptor checksums.
 */
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, test } from "node:test";
import { needs } from "../helpers/env.js";
import { platter, sh } from "../helpers/run.js";
import { tempDir } from "../helpers/tmp.js";

const MARKER = "PLATTER-LAYOUT-JUNK";

/**
 * An image of `mib` MiB full of junk lines, and a small tree to put in it,
 * its file sizes rounded up to `unit` bytes (mtools leaves old bytes in the
 * tail of a file's last cluster, which is used and copied: whole clusters
 * keep the junk check exact).
 */
async function junkImageAndTree(dir: string, mib: number, unit = 1): Promise<{ img: string; tree: string }> {
  const img = join(dir, "fs.img");
  const tree = join(dir, "tree");
  await sh(`head -c ${mib}M < <(yes ${MARKER}) > ${img}`);
  await sh(
    `up() { echo $(( ($1 + ${unit} - 1) / ${unit} * ${unit} )); }; ` +
      `mkdir -p ${tree}/a/b && head -c $(up 1500000) /dev/urandom > ${tree}/a/big.bin && ` +
      `for i in $(seq 1 30); do head -c $(up $((i * 333))) /dev/urandom > ${tree}/a/b/f$i; done && ` +
      `head -c $(up 3) < <(yes hi) > ${tree}/hi.txt`,
  );
  return { img, tree };
}

/** Block ranges dumpe2fs lists as free, [first, end). */
async function freeBlocks(img: string): Promise<Array<[number, number]>> {
  const out: Array<[number, number]> = [];
  for (const m of (await sh(`dumpe2fs ${img} 2>/dev/null`)).matchAll(/^\s+Free blocks: (.*)$/gm)) {
    for (const part of m[1].split(",").map((p) => p.trim()).filter(Boolean)) {
      const [a, b = a] = part.split("-").map(Number);
      out.push([a, b + 1]);
    }
  }
  return out;
}

describe("capture --used-only agrees with e2fsprogs on every ext layout", { skip: needs("mkfs.ext4", "dumpe2fs", "e2fsck", "debugfs", "bash") }, () => {
  const layouts = [
    ["1 KiB blocks, no flex_bg, BLOCK_UNINIT groups with backups", "-b 1024 -O ^flex_bg"],
    ["4 KiB blocks, flex_bg", "-b 4096"],
    ["meta_bg (descriptors spread over the meta groups)", "-b 1024 -O meta_bg,^resize_inode"],
    ["bigalloc (16 KiB clusters)", "-b 4096 -O bigalloc -C 16384"],
    ["ext2 (no descriptor checksums: BLOCK_UNINIT is not trusted)", "-t ext2 -b 1024"],
    ["ext3 on 2 KiB blocks", "-t ext3 -b 2048"],
    ["uninit_bg checksums instead of metadata_csum", "-b 1024 -O ^metadata_csum,uninit_bg"],
  ] as const;
  for (const [what, options] of layouts) {
    test(what, async () => {
      const dir = tempDir();
      const { img, tree } = await junkImageAndTree(dir, 40);
      await sh(`mkfs.ext4 -q -F -E nodiscard,lazy_itable_init=0,lazy_journal_init=0 ${options} -d ${tree} ${img}`);
      const dest = join(dir, "used.img");
      const r = await platter(["capture", img, dest, "--used-only", "--json"]);
      assert.equal(r.code, 0, r.stderr);
      assert.equal(JSON.parse(r.stdout).partitions[0].method, "used blocks");
      await sh(`e2fsck -fn ${dest}`);

      const blockSize = Number(/^Block size:\s+(\d+)/m.exec(await sh(`dumpe2fs -h ${img} 2>/dev/null`))?.[1]);
      const expected = readFileSync(img);
      const free = await freeBlocks(img);
      assert.ok(free.length > 0);
      for (const [a, b] of free) expected.fill(0, a * blockSize, b * blockSize);
      const got = readFileSync(dest);
      assert.equal(got.length, expected.length);
      const wrong: number[] = [];
      for (let at = 0; at < got.length && wrong.length < 5; at += blockSize) {
        if (!got.subarray(at, at + blockSize).equals(expected.subarray(at, at + blockSize))) wrong.push(at / blockSize);
      }
      assert.deepEqual(wrong, [], "blocks that differ from the source with dumpe2fs's free blocks zeroed");
    });
  }
});

describe("capture --used-only on FAT12 and FAT16", { skip: needs("mkfs.vfat", "fsck.vfat", "mcopy", "bash") }, () => {
  for (const [bits, mib] of [
    [12, 4],
    [16, 24],
  ] as const) {
    test(`FAT${bits}: fsck.vfat-clean, files as mcopy reads them, no junk`, async () => {
      const dir = tempDir();
      const { img, tree } = await junkImageAndTree(dir, mib, 4096);
      await sh(`mkfs.vfat -F ${bits} ${img} >/dev/null && MTOOLS_SKIP_CHECK=1 mcopy -s -i ${img} ${tree}/a ${tree}/hi.txt ::/`);
      const dest = join(dir, "used.img");
      const r = await platter(["capture", img, dest, "--used-only", "--quiet"]);
      assert.equal(r.code, 0, r.stderr);
      await sh(`fsck.vfat -n ${dest}`);
      assert.equal(await sh(`grep -c -a ${MARKER} ${dest} || true`), "0\n");
      const back = join(dir, "back");
      await sh(`mkdir ${back} && MTOOLS_SKIP_CHECK=1 mcopy -s -i ${dest} ::/a ::/hi.txt ${back}/ && diff -r ${tree} ${back}`);
    });
  }
});
