/**
 * partclone images made by partclone itself (test/fixtures/make-partclone-images.sh),
 * read in place: the bytes are partclone.restore's, the files those debugfs
 * and mtools read from the original filesystem, the header what
 * partclone.info says; under gzip and zstd, and split as Clonezilla splits.
 */
import assert from "node:assert/strict";
import { closeSync, openSync, readFileSync, readSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { before, describe, test } from "node:test";
import { CRC32_SEED, partcloneCrc32V1 } from "../../src/container/partclone/checksum.js";
import { encodePartcloneHeader } from "../../src/container/partclone/header.js";
import type { BlockSource } from "../../src/io/block-source.js";
import { openImage } from "../../src/image/open-image.js";
import { needs } from "../helpers/env.js";
import { fixture } from "../helpers/fixtures.js";
import { manifest, project } from "../helpers/manifest.js";
import { platter, run, sh } from "../helpers/run.js";
import { tempDir } from "../helpers/tmp.js";

const TOOLS = ["partclone.ext4", "partclone.vfat", "partclone.ntfs", "partclone.restore", "partclone.info", "mkfs.ext4", "debugfs", "mkfs.vfat", "mcopy", "mkntfs", "ntfscp", "gzip", "zstd", "perl", "qemu-img"];
const CHUNK = 1 << 20;

/** Compare `source` with the file at `path` chunk by chunk; the ranges `where` says, or all of it. */
async function sameBytes(source: BlockSource, path: string, where: Array<[number, number]> = [[0, source.size]]): Promise<void> {
  const fd = openSync(path, "r");
  try {
    const theirs = Buffer.alloc(CHUNK);
    for (const [start, length] of where) {
      for (let at = start; at < start + length; at += CHUNK) {
        const n = Math.min(CHUNK, start + length - at);
        const ours = await source.read(at, n);
        assert.equal(readSync(fd, theirs, 0, n, at), n, `${path} is shorter than ${at + n}`);
        if (!ours.equals(theirs.subarray(0, n))) {
          const diff = ours.findIndex((b, i) => b !== theirs[i]);
          assert.fail(`${source.name} differs from ${path} at byte ${at + diff}`);
        }
      }
    }
  } finally {
    closeSync(fd);
  }
}

/** [0, size) less `ranges` (sorted, disjoint). */
function complement(ranges: Array<[number, number]>, size: number): Array<[number, number]> {
  const out: Array<[number, number]> = [];
  let pos = 0;
  for (const [start, length] of ranges) {
    if (start > pos) out.push([pos, start - pos]);
    pos = start + length;
  }
  if (pos < size) out.push([pos, size - pos]);
  return out;
}

describe("partclone images made by partclone", { skip: needs(...TOOLS) }, () => {
  let dir: string;
  before(async () => {
    dir = await fixture("make-partclone-images.sh", "partclone");
  });

  for (const fs of ["ext4", "ext4-1k", "fat", "ntfs"]) {
    test(`${fs}.ptcl reads as partclone.restore restores it, byte for byte, and as the original filesystem on every used block`, async () => {
      const image = await openImage(join(dir, `${fs}.ptcl`));
      try {
        assert.deepEqual(image.layers.map((l) => l.format), ["partclone"]);
        await sameBytes(image.source, join(dir, `${fs}.restored`));
        const used = await (image.source.dataRanges as NonNullable<BlockSource["dataRanges"]>)(0, image.source.size);
        await sameBytes(image.source, join(dir, `${fs}.img`), used);
        // The free blocks platter reads as zeros hold the fixture's pattern or deleted files in the original.
        const original = await openImage(join(dir, `${fs}.img`));
        try {
          let nonZero = 0;
          for (const [start, length] of complement(used, image.source.size)) {
            for (let at = start; at < start + length && nonZero === 0; at += CHUNK) {
              nonZero += (await original.source.read(at, Math.min(CHUNK, start + length - at))).some((b) => b !== 0) ? 1 : 0;
            }
          }
          assert.ok(nonZero > 0, "the original's free space is not all zeros");
        } finally {
          await original.close();
        }
      } finally {
        await image.close();
      }
    });
  }

  const VARIANTS = { "ext4-nocrc": "-a 0", "ext4-k7": "-k 7", "ext4-noreseed": "-K", "ext4-kbig": "-k 100000", "ext4-k1500-noreseed": "-k 1500 -K" };
  for (const [variant, options] of Object.entries(VARIANTS)) {
    test(`${variant}.ptcl (partclone ${options}) reads as the restored ext4, in small reads and in one`, async () => {
      const image = await openImage(join(dir, `${variant}.ptcl`));
      try {
        await sameBytes(image.source, join(dir, "ext4.restored"));
        // One read covers every strip whole: those are checked where they land instead of through the cache.
        const fresh = await openImage(join(dir, `${variant}.ptcl`));
        try {
          assert.ok((await fresh.source.read(0, fresh.source.size)).equals(readFileSync(join(dir, "ext4.restored"))));
        } finally {
          await fresh.close();
        }
      } finally {
        await image.close();
      }
    });
  }

  test("a version 0001 image (crafted here: partclone writes only 0002 now) reads as partclone.restore restores it", async () => {
    // 0001: the 4160-byte header, a byte per block (1 = used), "BiTmAgIc", then each used block and its
    // crc32_0001 (the CRC of its first byte repeated), chained from block to block.
    const raw = await openImage(join(dir, "ext4.img"));
    const ptcl = await openImage(join(dir, "ext4.ptcl"));
    const out = tempDir();
    const v1Path = join(out, "ext4-v1.ptcl");
    try {
      const used = await (ptcl.source.dataRanges as NonNullable<BlockSource["dataRanges"]>)(0, ptcl.source.size);
      const totalBlocks = raw.source.size / 4096;
      const byteMap = Buffer.alloc(totalBlocks);
      const parts: Buffer[] = [];
      let crc = CRC32_SEED;
      const scratch = Buffer.alloc(4096);
      for (const [start, length] of used) {
        byteMap.fill(1, start / 4096, (start + length) / 4096);
        for (let at = start; at < start + length; at += 4096) {
          const block = await raw.source.read(at, 4096);
          crc = partcloneCrc32V1(block, crc, scratch);
          const sum = Buffer.alloc(4);
          sum.writeUInt32LE(crc);
          parts.push(block, sum);
        }
      }
      const usedBlocks = parts.length / 2;
      const header = encodePartcloneHeader({
        imageVersion: 1, partcloneVersion: null, filesystem: "EXTFS", deviceSize: raw.source.size, totalBlocks, usedBlocks,
        superBlockUsedBlocks: null, blockSize: 4096, checksum: "crc32-0001", checksumSize: 4, blocksPerChecksum: 1,
        reseedChecksum: false, bitmapMode: "byte", cpuBits: null, headerSize: 4160,
      });
      writeFileSync(v1Path, Buffer.concat([header, byteMap, Buffer.from("BiTmAgIc"), ...parts]));
    } finally {
      await raw.close();
      await ptcl.close();
    }
    const restore = await run("partclone.restore", ["-s", v1Path, "-O", join(out, "v1.restored"), "-W", "-L", join(out, "log")]);
    assert.equal(restore.code, 0, restore.stderr);
    const image = await openImage(v1Path);
    try {
      assert.deepEqual(image.layers[0].describe(), { ...image.layers[0].describe(), imageVersion: "0001", checksum: "crc32-0001", blocksPerChecksum: 1 });
      await sameBytes(image.source, join(out, "v1.restored"));
      await sameBytes(image.source, join(dir, "ext4.restored"));
    } finally {
      await image.close();
    }
    // Old 0001 images may count used blocks wrong: partclone.restore goes by the bitmap ("fixed used blocks count"), and so does platter, saying so.
    const miscounted = readFileSync(v1Path);
    const wrong = miscounted.readUInt32LE(56) - 10;
    miscounted.writeUInt32LE(wrong, 56);
    writeFileSync(v1Path, miscounted);
    const again = await run("partclone.restore", ["-s", v1Path, "-O", join(out, "v1b.restored"), "-W", "-L", join(out, "log")]);
    assert.equal(again.code, 0, again.stderr);
    const warnings: string[] = [];
    const fixed = await openImage(v1Path, { onWarning: (m) => warnings.push(m) });
    try {
      await sameBytes(fixed.source, join(out, "v1b.restored"));
      assert.deepEqual(warnings.map((w) => w.replace(/^.*?: /, "")), [`partclone image header: usedblocks (byte 56) is ${wrong}, but the bitmap marks ${wrong + 10} blocks used; reading as the bitmap says, as partclone does`]);
    } finally {
      await fixed.close();
    }
  });

  test("info --json: the partclone layer says what partclone.info says", async () => {
    const theirs = (await run("partclone.info", ["-s", join(dir, "ext4-k7.ptcl"), "-L", "/dev/null"])).stderr;
    const field = (name: string) => (theirs.match(new RegExp(`^${name}:\\s*(.*)$`, "m")) ?? [])[1]?.trim();
    const r = await platter(["info", join(dir, "ext4-k7.ptcl"), "--json"]);
    assert.equal(r.code, 0, r.stderr);
    const info = JSON.parse(r.stdout);
    assert.equal(info.format, "partclone");
    assert.equal(info.filesystem, "ext4");
    assert.equal(info.label, "pcl-ext4");
    assert.equal(info.virtualSize, 24 << 20);
    const [layer] = info.layers;
    assert.equal(layer.filesystem, field("File system"));
    assert.equal(`${layer.blockSize} Byte`, field("Block size"));
    assert.match(field("Space in use") ?? "", new RegExp(`= ${layer.usedBlocks} Blocks$`));
    assert.equal(layer.imageVersion, field("image format"));
    assert.equal(`v${layer.partcloneVersion}`, field("with partclone"));
    assert.equal(layer.checksum.toUpperCase(), field("checksum algo"));
    assert.equal(String(layer.blocksPerChecksum), field("blocks/checksum"));
    assert.equal(layer.seekable, true);
  });

  test("extract from ext4.ptcl gives the files debugfs rdump gives from the original; the deleted ones are gone", async () => {
    const out = tempDir();
    const r = await platter(["extract", join(dir, "ext4.ptcl"), "/", "-o", join(out, "ours")]);
    assert.equal(r.code, 0, r.stderr);
    await sh(`mkdir ${out}/theirs && debugfs -R "rdump / ${out}/theirs" ${join(dir, "ext4.img")} 2>/dev/null`);
    const fields = ["type", "mode", "size", "content"] as const;
    const ours = project(manifest(join(out, "ours")), [...fields]);
    assert.deepEqual(ours, project(manifest(join(out, "theirs")), [...fields]));
    assert.ok(ours["junk/junk-1.bin"] && !ours["junk/junk-2.bin"], "junk-2 was deleted, junk-1 was not");
    assert.equal(ours["docs/big.bin"]?.size, 1500000);
  });

  test("cat from ext4-1k.ptcl gives what debugfs cat gives from the original", async () => {
    for (const path of ["/docs/big.bin", "/odd-size.bin", "/docs/deep/er/deep.txt"]) {
      const ours = await platter(["cat", join(dir, "ext4-1k.ptcl"), path]);
      assert.equal(ours.code, 0, ours.stderr);
      const theirs = await run("debugfs", ["-R", `cat ${path}`, join(dir, "ext4-1k.img")]);
      assert.ok(ours.stdoutBytes.equals(theirs.stdoutBytes), path);
    }
  });

  test("extract from fat.ptcl gives the files mcopy gives from the original", async () => {
    const out = tempDir();
    const r = await platter(["extract", join(dir, "fat.ptcl"), "/", "-o", join(out, "ours")]);
    assert.equal(r.code, 0, r.stderr);
    await sh(`mkdir ${out}/theirs && MTOOLS_SKIP_CHECK=1 mcopy -s -n -i ${join(dir, "fat.img")} '::/*' ${out}/theirs/`);
    const fields = ["type", "size", "content"] as const;
    assert.deepEqual(project(manifest(join(out, "ours")), [...fields]), project(manifest(join(out, "theirs")), [...fields]));
  });

  test("info on ntfs.ptcl finds the NTFS partclone saved, label and all", async () => {
    const r = await platter(["info", join(dir, "ntfs.ptcl"), "--json"]);
    assert.equal(r.code, 0, r.stderr);
    const info = JSON.parse(r.stdout);
    assert.deepEqual([info.filesystem, info.label, info.layers[0].filesystem], ["ntfs", "PCLNTFS", "NTFS"]);
  });

  test("convert ext4.ptcl to raw equals partclone.restore's output", async () => {
    const out = tempDir();
    const r = await platter(["convert", join(dir, "ext4.ptcl"), join(out, "ext4.img"), "--sparse"]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal((await run("cmp", [join(out, "ext4.img"), join(dir, "ext4.restored")])).code, 0);
  });

  test("convert ext4.ptcl --to qcow2: qemu-img finds it clean and identical to partclone.restore's output, free blocks left unallocated", async () => {
    const out = tempDir();
    const qcow2 = join(out, "ext4.qcow2");
    const r = await platter(["convert", join(dir, "ext4.ptcl"), qcow2, "--to", "qcow2"]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal((await run("qemu-img", ["check", qcow2])).code, 0);
    const compare = await run("qemu-img", ["compare", "-f", "qcow2", "-F", "raw", qcow2, join(dir, "ext4.restored")]);
    assert.equal(compare.code, 0, compare.stdout + compare.stderr);
    // Only the used blocks were written: qemu-img's map of allocated data is no bigger than partclone's used blocks.
    const image = await openImage(join(dir, "ext4.ptcl"));
    let used = 0;
    try {
      for (const [, length] of await (image.source.dataRanges as NonNullable<BlockSource["dataRanges"]>)(0, image.source.size)) used += length;
    } finally {
      await image.close();
    }
    const map = JSON.parse((await run("qemu-img", ["map", "--output=json", qcow2])).stdout) as Array<{ length: number; data: boolean }>;
    const allocated = map.filter((m) => m.data).reduce((sum, m) => sum + m.length, 0);
    assert.ok(allocated <= used + (64 << 10) && allocated < 24 << 19, `qcow2 holds ${allocated} bytes of data for ${used} used bytes`);
  });

  test("ls through the CLI on ext4.ptcl.zst lists what debugfs ls lists in the original", async () => {
    for (const path of ["/", "/docs", "/junk", "/docs/deep/er"]) {
      const r = await platter(["ls", join(dir, "ext4.ptcl.zst"), path, "--json"]);
      assert.equal(r.code, 0, r.stderr);
      const ours = (JSON.parse(r.stdout) as Array<{ name: string; type: string; size: number }>)
        .map((e) => `${e.name} ${e.type === "file" ? e.size : e.type}`)
        .sort();
      // debugfs ls -p: /inode/mode/uid/gid/name/size/
      const theirs = (await run("debugfs", ["-R", `ls -p ${path}`, join(dir, "ext4.img")])).stdout
        .split("\n")
        .filter((line) => line.startsWith("/"))
        .map((line) => line.split("/"))
        .filter(([, , , , , name]) => name !== "." && name !== "..")
        .map(([, , mode, , , name, size]) => {
          const type = { "04": "dir", "10": "file", "12": "symlink" }[mode.padStart(6, "0").slice(0, 2)];
          return `${name} ${type === "file" ? size : type}`;
        })
        .sort();
      assert.deepEqual(ours, theirs, path);
    }
  });

  test("split -b 1M pieces open as one image, by the first piece's name or the image's own", async () => {
    for (const name of ["split/ext4.ptcl", "split/ext4.ptcl.aa"]) {
      const image = await openImage(join(dir, name));
      try {
        assert.equal(image.files.length, 9);
        await sameBytes(image.source, join(dir, "ext4.restored"));
      } finally {
        await image.close();
      }
    }
    const r = await platter(["info", join(dir, "split/ext4.ptcl"), "--json"]);
    assert.equal(r.code, 0, r.stderr);
    const info = JSON.parse(r.stdout);
    assert.deepEqual([info.format, info.fileSize, info.filesystem], ["partclone", statSync(join(dir, "ext4.ptcl")).size, "ext4"]);
  });

  test("ext4.ptcl.gz (partclone | gzip) reads as the restored ext4", async () => {
    const image = await openImage(join(dir, "ext4.ptcl.gz"));
    try {
      assert.deepEqual(image.layers.map((l) => l.format), ["gzip", "partclone"]);
      assert.equal(image.layers[1].seekable, image.layers[0].seekable, "partclone is as seekable as the layer below");
      await sameBytes(image.source, join(dir, "ext4.restored"));
    } finally {
      await image.close();
    }
  });

  test("ext4.ptcl.gz.aa, .ab, .ac (Clonezilla's split gzip) read as the restored ext4", async () => {
    const image = await openImage(join(dir, "split/ext4.ptcl.gz.aa"));
    try {
      assert.deepEqual(image.layers.map((l) => l.format), ["gzip", "partclone"]);
      await sameBytes(image.source, join(dir, "ext4.restored"));
    } finally {
      await image.close();
    }
  });

  test("ext4.ptcl.zst (partclone | zstd) reads as the restored ext4", async () => {
    const image = await openImage(join(dir, "ext4.ptcl.zst"));
    try {
      assert.deepEqual(image.layers.map((l) => l.format), ["zstd", "partclone"]);
      await sameBytes(image.source, join(dir, "ext4.restored"));
    } finally {
      await image.close();
    }
  });
});
