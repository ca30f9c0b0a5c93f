/**
 * platter check names the files a damaged cluster of a qcow2 holds, and only
 * those: disks made by mkfs.ext4, mkfs.vfat + mcopy and xorriso, converted by
 * `qemu-img convert`, one guest cluster's refcount zeroed (qemu-img check's
 * corruption), and the owners of that cluster's bytes asked of the real
 * tools: debugfs icheck/ncheck and blocks, mshowfat, xorriso report_lba,
 * and for squashfs (whose tools say nowhere where a file is) the bytes
 * mksquashfs stored uncompressed, found in the image.
 */
import assert from "node:assert/strict";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, test } from "node:test";
import { pattern } from "../helpers/data.js";
import { needs } from "../helpers/env.js";
import { l2EntryOf, zeroRefcountOf } from "../helpers/qcow2-damage.js";
import { platter, sh } from "../helpers/run.js";
import { tempDir } from "../helpers/tmp.js";

const CLUSTER = 65536;
const MiB = 1 << 20;

interface Hit {
  path: string;
  /** Base64 of the path's bytes, when they are not UTF-8. */
  pathBytes?: string;
  offset: number;
  length: number;
  map?: boolean;
}

interface Owner {
  number: number | null;
  filesystem: string;
  files: Hit[] | null;
  filesNotListed: number;
  metadata: Array<{ what: string; offset: number; length: number }>;
}

/** Where a file's bytes are, as a real tool says: its size and its pieces [file offset, disk offset, length] (whole blocks or clusters). */
interface Layout {
  size: number;
  pieces: Array<[number, number, number]>;
}

/** [path, byte range of the file] for each file whose stored bytes meet [start, end), the last block's slack past the file's size left out. */
function expectedHits(files: Map<string, Layout>, start: number, end: number): Hit[] {
  const hits: Hit[] = [];
  for (const [path, { size, pieces }] of files) {
    let from = Infinity;
    let to = -Infinity;
    for (const [fileOffset, at, whole] of pieces) {
      const length = Math.min(whole, size - fileOffset);
      const a = Math.max(at, start);
      const b = Math.min(at + length, end);
      if (a >= b) continue;
      from = Math.min(from, fileOffset + (a - at));
      to = Math.max(to, fileOffset + (b - at));
    }
    if (from < to) hits.push({ path, offset: from, length: to - from });
  }
  return hits.sort((x, y) => (x.path < y.path ? -1 : 1));
}

/** The data hits (not inode or map) platter names, sorted by path. */
const dataHits = (owner: Owner) =>
  (owner.files ?? []).filter((f) => !f.map).map(({ path, offset, length }) => ({ path, offset, length })).sort((x, y) => (x.path < y.path ? -1 : 1));

describe("platter check names the files in a damaged cluster, as the real tools place them", { skip: needs("qemu-img") }, () => {
  const dir = tempDir();

  /** An L2 entry past the end of the file: the guest cluster cannot be read at all. */
  async function pointPastEnd(image: Buffer, guest: number): Promise<void> {
    const { at } = await l2EntryOf(image, guest);
    image.writeBigUInt64BE((1n << 63n) | BigInt(image.length + CLUSTER * 100), at);
  }

  /** `raw` as a qcow2 with the guest cluster holding `guest` damaged (its refcount zeroed); platter check's JSON report and text. */
  async function checkDamaged(raw: string, guest: number, damage: (image: Buffer, guest: number) => Promise<void> = zeroRefcountOf) {
    const qcow2 = `${raw}.qcow2`;
    await sh(`qemu-img convert -q -f raw -O qcow2 ${raw} ${qcow2}`);
    const image = readFileSync(qcow2);
    await damage(image, guest);
    writeFileSync(qcow2, image);
    const json = await platter(["check", qcow2, "--json"]);
    assert.equal(json.code, 1, json.stderr);
    const report = JSON.parse(json.stdout);
    const cluster = Math.floor(guest / CLUSTER) * CLUSTER;
    assert.deepEqual(
      report.damaged.map((d: { offset: number; length: number }) => [d.offset, d.length]),
      [[cluster, CLUSTER]],
    );
    return { report, cluster, text: (await platter(["check", qcow2])).stdout };
  }

  test("ext4 in partition 1: the files and directories debugfs icheck/ncheck place in the cluster, with the bytes debugfs blocks gives", { skip: needs("mkfs.ext4", "debugfs", "sfdisk") }, async () => {
    const tree = join(dir, "ext-tree");
    await sh(`mkdir -p ${tree}/small ${tree}/deep/er`);
    writeFileSync(join(tree, "big.bin"), pattern(MiB, 3));
    for (let i = 0; i < 40; i++) writeFileSync(join(tree, "small", `f${i}`), pattern(3000, 100 + i));
    writeFileSync(join(tree, "deep", "er", "last.txt"), "the end\n");
    const fsImage = join(dir, "ext4.fs");
    const disk = join(dir, "ext4-disk.img");
    await sh(`mkfs.ext4 -q -F -b 4096 -L files -d ${tree} ${fsImage} 24M`);
    await sh(`truncate -s 26M ${disk} && echo '2048,49152,L' | sfdisk -q ${disk} && dd if=${fsImage} of=${disk} bs=1M seek=1 conv=notrunc status=none`);
    const blocksOf = async (path: string) => (await sh(`debugfs -R 'blocks ${path}' ${fsImage} 2>/dev/null`)).trim().split(/\s+/).map(Number);

    // Two clusters: one in the middle of big.bin, one among the small files.
    for (const [path, index] of [["/big.bin", 128], ["/small/f20", 0]] as const) {
      const block = (await blocksOf(path))[index] as number;
      const { report, cluster, text } = await checkDamaged(disk, MiB + block * 4096);
      const owner = report.damaged[0].partitions[0] as Owner;
      assert.equal(owner.number, 1);
      assert.equal(owner.filesystem, "ext4");
      // debugfs: which inodes own the 16 blocks of the cluster, and their paths.
      const first = (cluster - MiB) / 4096;
      const blocks = Array.from({ length: CLUSTER / 4096 }, (_, i) => first + i);
      const icheck = await sh(`debugfs -R 'icheck ${blocks.join(" ")}' ${fsImage} 2>/dev/null`);
      const inodes = [...new Set(icheck.split("\n").slice(1).map((l) => l.trim().split(/\s+/)[1]).filter((i) => i && /^\d+$/.test(i)))];
      const ncheck = inodes.length ? await sh(`debugfs -R 'ncheck ${inodes.join(" ")}' ${fsImage} 2>/dev/null`) : "";
      const paths = ncheck.split("\n").slice(1).map((l) => l.split("\t")[1]).filter(Boolean).map((p) => p.replace(/^\/\//, "/"));
      assert.ok(paths.includes(path), `debugfs places ${path} there`);
      // The bytes of each file hit, from debugfs's block lists (4 KiB blocks, no holes in these files).
      const layout = new Map<string, Layout>();
      for (const p of paths) {
        const size = Number(/Size: (\d+)/.exec(await sh(`debugfs -R 'stat ${p}' ${fsImage} 2>/dev/null`))?.[1]);
        layout.set(p, { size, pieces: (await blocksOf(p)).map((b, i) => [i * 4096, b * 4096, 4096]) });
      }
      const expected = expectedHits(layout, cluster - MiB, cluster - MiB + CLUSTER);
      assert.deepEqual(dataHits(owner), expected);
      const big = expected.find((h) => h.path === "/big.bin");
      if (big) assert.match(text, new RegExp(`^  /big\\.bin \\(bytes ${big.offset}-${big.offset + big.length - 1} of the file\\)$`, "m"));
    }
  });

  test("ext4: a directory that cannot be read is named, a warning says its files are not, and the rest of the tree is walked; a filesystem that cannot be walked or probed is still listed, with a warning", { skip: needs("mkfs.ext4", "debugfs", "sfdisk") }, async () => {
    const tree = join(dir, "unreadable-tree");
    await sh(`mkdir -p ${tree}/a ${tree}/lost/inner`);
    writeFileSync(join(tree, "a", "before.bin"), pattern(200_000, 1));
    for (let i = 0; i < 5; i++) writeFileSync(join(tree, "lost", `gone${i}`), pattern(100, 30 + i));
    writeFileSync(join(tree, "zz-after.bin"), pattern(200_000, 2));
    const fsImage = join(dir, "unreadable.fs");
    const disk = join(dir, "unreadable-disk.img");
    await sh(`mkfs.ext4 -q -F -b 4096 -d ${tree} ${fsImage} 16M`);
    await sh(`truncate -s 18M ${disk} && echo '2048,32768,L' | sfdisk -q ${disk} && dd if=${fsImage} of=${disk} bs=1M seek=1 conv=notrunc status=none`);
    const blockOf = async (path: string) => Number((await sh(`debugfs -R 'blocks ${path}' ${fsImage} 2>/dev/null`)).trim().split(/\s+/)[0]);
    const lost = await blockOf("/lost");
    const clusterOf = (block: number) => Math.floor((MiB + block * 4096) / CLUSTER);
    for (const other of ["/", "/a", "/a/before.bin", "/zz-after.bin"]) assert.notEqual(clusterOf(await blockOf(other)), clusterOf(lost), `${other} is elsewhere`);

    const { report } = await checkDamaged(disk, MiB + lost * 4096, pointPastEnd);
    const owner = report.damaged[0].partitions[0] as Owner;
    assert.ok(owner.files?.some((f) => f.path === "/lost" && !f.map), "the directory's own block is named");
    assert.ok(!owner.files?.some((f) => f.path.startsWith("/lost/")), "nothing below it could be listed");
    assert.ok(report.warnings.some((w: string) => /^partition 1 \(ext4\): \/lost could not be read \(.*\): the files below it are not named$/.test(w)), report.warnings.join("\n"));

    // The inode table holding the root's inode: the filesystem opens but cannot be walked.
    const inodeTable = Number(/Group\s+0: .*inode table at (\d+)/.exec(await sh(`debugfs -R stats ${fsImage} 2>/dev/null`))?.[1]);
    const unwalkable = (await checkDamaged(disk, MiB + inodeTable * 4096, pointPastEnd)).report;
    const partition = unwalkable.damaged[0].partitions[0] as Owner;
    assert.deepEqual([partition.number, partition.filesystem, partition.files], [1, "ext4", null]);
    assert.ok(unwalkable.warnings.some((w: string) => /^partition 1 \(ext4\) could not be walked, so the files the damage hits there are not named: /.test(w)), unwalkable.warnings.join("\n"));

    // The superblock: not even the filesystem can be told; the partition is still listed.
    const blind = (await checkDamaged(disk, MiB, pointPastEnd)).report;
    const unknown = blind.damaged[0].partitions[0] as Owner;
    assert.deepEqual([unknown.number, unknown.filesystem, unknown.files], [1, null, null]);
    assert.ok(blind.warnings.some((w: string) => /^partition 1 of .*: filesystem unknown \(.*past the end of the file/.test(w)), blind.warnings.join("\n"));
  });

  test("ext4 on the whole disk, a name that is not UTF-8: printable in JSON with its exact bytes in pathBytes, escaped as ls -b does in the text", { skip: needs("mkfs.ext4", "debugfs") }, async () => {
    const tree = join(dir, "raw-name-tree");
    await sh(`mkdir -p ${tree}`);
    const name = Buffer.from("bad\xff.bin", "latin1");
    writeFileSync(Buffer.concat([Buffer.from(`${tree}/`), name]), pattern(200_000, 4));
    const disk = join(dir, "raw-name.img");
    await sh(`mkfs.ext4 -q -F -b 4096 -d ${tree} ${disk} 8M`);
    const inode = Number((await sh(`debugfs -R 'ls -l /' ${disk} 2>/dev/null`)).split("\n").find((l) => l.includes("bad"))?.trim().split(/\s+/)[0]);
    const blocks = (await sh(`debugfs -R 'blocks <${inode}>' ${disk} 2>/dev/null`)).trim().split(/\s+/).map(Number);
    const { report, cluster, text } = await checkDamaged(disk, (blocks[20] as number) * 4096);
    const owner = report.damaged[0].partitions[0] as Owner;
    assert.equal(owner.number, null, "the whole disk: no partition table");
    const hit = owner.files?.find((f) => f.pathBytes !== undefined) ?? assert.fail(JSON.stringify(owner.files));
    assert.equal(hit.path, "/bad\ufffd.bin");
    assert.equal(Buffer.from(hit.pathBytes as string, "base64").toString("latin1"), "/bad\xff.bin");
    const layout = new Map<string, Layout>([[hit.path, { size: 200_000, pieces: blocks.map((b, i) => [i * 4096, b * 4096, 4096]) }]]);
    const [expected] = expectedHits(layout, cluster, cluster + CLUSTER);
    assert.deepEqual([hit.offset, hit.length], [expected?.offset, expected?.length]);
    assert.match(text, /^ {2}\/bad\\377\.bin \(bytes \d+-\d+ of the file\)$/m);
  });

  test("FAT16 on the whole disk: the files whose clusters mshowfat places in the damaged cluster", { skip: needs("mkfs.vfat", "mcopy", "mshowfat", "fsck.fat") }, async () => {
    const disk = join(dir, "fat.img");
    await sh(`mkfs.vfat -C -F 16 -s 1 -n FATDISK ${disk} 16384 >/dev/null`);
    const files = new Map<string, number>();
    const put = async (name: string, bytes: Buffer) => {
      writeFileSync(join(dir, "fat-src"), bytes);
      await sh(`mcopy -i ${disk} ${join(dir, "fat-src")} ::/${name}`, { env: { MTOOLS_SKIP_CHECK: "1" } });
      files.set(name, bytes.length);
    };
    for (let i = 0; i < 10; i++) await put(`a${i}.txt`, pattern(1500, 10 + i));
    await put("big.bin", pattern(200_000, 5));
    for (let i = 0; i < 30; i++) await put(`b${i}.txt`, pattern(700, 50 + i));
    const dataStart = Number(/Data area starts at byte (\d+)/.exec(await sh(`fsck.fat -n -v ${disk}`))?.[1]);
    const layout = new Map<string, Layout>();
    for (const [name, size] of files) {
      const chain = await sh(`mshowfat -i ${disk} ::/${name}`, { env: { MTOOLS_SKIP_CHECK: "1" } });
      const pieces: Array<[number, number, number]> = [];
      let fileOffset = 0;
      for (const [, a, b] of chain.matchAll(/<(\d+)(?:-(\d+))?>/g)) {
        const count = Number(b ?? a) - Number(a) + 1;
        pieces.push([fileOffset, dataStart + (Number(a) - 2) * 512, count * 512]);
        fileOffset += count * 512;
      }
      layout.set(`/${name}`, { size, pieces });
    }
    // The cluster where big.bin ends and the b*.txt files begin.
    const [lastOffset, lastAt, lastLength] = layout.get("/big.bin")?.pieces.at(-1) ?? assert.fail("no big.bin");
    const bigEnd = lastAt + (200_000 - lastOffset);
    assert.ok(bigEnd <= lastAt + lastLength);
    const { report, cluster } = await checkDamaged(disk, bigEnd - 1);
    const owner = report.damaged[0].partitions[0] as Owner;
    assert.equal(owner.number, null, "the whole disk: no partition table");
    assert.equal(owner.filesystem, "vfat");
    const expected = expectedHits(layout, cluster, cluster + CLUSTER);
    assert.ok(expected.length > 2, "the cluster holds big.bin's end and several small files");
    assert.deepEqual(dataHits(owner), expected);
  });

  test("ISO 9660 on the whole disk: the files whose extents xorriso report_lba places in the damaged cluster", { skip: needs("xorriso") }, async () => {
    const tree = join(dir, "iso-tree");
    await sh(`mkdir -p ${tree}/docs`);
    writeFileSync(join(tree, "big.bin"), pattern(300_000, 9));
    for (let i = 0; i < 20; i++) writeFileSync(join(tree, "docs", `d${i}.txt`), pattern(5000, 200 + i));
    const iso = join(dir, "disc.iso");
    await sh(`xorriso -as mkisofs -quiet -R -J -V DISC -o ${iso} ${tree} 2>/dev/null`);
    const report = await sh(`xorriso -indev ${iso} -find / -type f -exec report_lba -- 2>/dev/null`);
    const layout = new Map<string, Layout>();
    for (const [, lba, , size, path] of report.matchAll(/^File data lba:\s*\d+\s*,\s*(\d+)\s*,\s*(\d+)\s*,\s*(\d+)\s*,\s*'(.*)'$/gm)) {
      layout.set(path as string, { size: Number(size), pieces: [[0, Number(lba) * 2048, Number(size)]] });
    }
    const [, bigAt] = layout.get("/big.bin")?.pieces[0] ?? assert.fail("no big.bin");
    const { report: checked, cluster } = await checkDamaged(iso, bigAt + 300_000 - 1);
    const owner = checked.damaged[0].partitions[0] as Owner;
    assert.equal(owner.filesystem, "iso9660");
    const expected = expectedHits(layout, cluster, cluster + CLUSTER);
    assert.ok(expected.some((h) => h.path === "/big.bin"));
    assert.deepEqual(dataHits(owner), expected);
  });

  test("squashfs on the whole disk, data stored uncompressed (mksquashfs -noD): the file whose bytes mksquashfs put in the damaged cluster, the bytes of it there", { skip: needs("mksquashfs") }, async () => {
    const tree = join(dir, "sqfs-tree");
    await sh(`mkdir -p ${tree}/etc`);
    const big = pattern(400_000, 21);
    writeFileSync(join(tree, "big.bin"), big);
    for (let i = 0; i < 10; i++) writeFileSync(join(tree, "etc", `conf${i}`), pattern(900, 60 + i));
    const image = join(dir, "fs.sqfs");
    await sh(`mksquashfs ${tree} ${image} -noD -quiet -noappend`);
    // Where mksquashfs put big.bin: its bytes, stored as they are, found in the image.
    const at = readFileSync(image).indexOf(big.subarray(0, 4096));
    assert.ok(at > 0);
    const { report, cluster } = await checkDamaged(image, at + 150_000);
    const owner = report.damaged[0].partitions[0] as Owner;
    assert.deepEqual([owner.number, owner.filesystem], [null, "squashfs"]);
    assert.deepEqual(dataHits(owner), [{ path: "/big.bin", offset: cluster - at, length: CLUSTER }]);
  });
});
