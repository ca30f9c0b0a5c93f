/**
 * Images crafted to attack the reader and the extractor: names that climb
 * out ("..", "/" and NUL inside names), a symlink and a folder sharing one
 * name so a write could go through the link, looping FAT chains, directory
 * cycles, extents past the end, absurd sizes. Each must end in a clean
 * one-line error or a safe name, and nothing may appear outside DIR.
 */
import assert from "node:assert/strict";
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { before, describe, test } from "node:test";
import { needs } from "../helpers/env.js";
import { fixture } from "../helpers/fixtures.js";
import { platter, sh } from "../helpers/run.js";
import { tempDir } from "../helpers/tmp.js";

const MTOOLS = "MTOOLS_SKIP_CHECK=1 TZ=UTC LC_ALL=C.UTF-8";

interface Sandbox {
  /** Holds DIR ("out") and "outside", and must hold nothing else after an extraction. */
  root: string;
  out: string;
  outside: string;
  /** Where the crafted images live, apart from the sandbox. */
  work: string;
}

function sandbox(): Sandbox {
  const root = tempDir("platter-hostile-");
  const outside = join(root, "outside");
  mkdirSync(outside);
  return { root, out: join(root, "out"), outside, work: tempDir("platter-hostile-img-") };
}

function assertNothingOutside(box: Sandbox): void {
  assert.deepEqual(readdirSync(box.root).sort(), ["out", "outside"].filter((n) => existsSync(join(box.root, n))));
  assert.deepEqual(readdirSync(box.outside), [], "nothing was written through a link to outside");
}

function patch(path: string, at: number, bytes: Buffer | number[]): void {
  const img = readFileSync(path);
  Buffer.from(bytes).copy(img, at);
  writeFileSync(path, img);
}

/** Byte offsets of every occurrence of `needle` in the file. */
function find(path: string, needle: Buffer | string): number[] {
  const img = readFileSync(path);
  const out: number[] = [];
  for (let i = img.indexOf(needle); i >= 0; i = img.indexOf(needle, i + 1)) out.push(i);
  return out;
}

/** Rewrite the long name of the entry whose long name is `from` (same number of slots). */
function renameLfn(path: string, from: string, to: string): void {
  const img = readFileSync(path);
  const units = (s: string) => Array.from({ length: s.length }, (_, i) => s.charCodeAt(i));
  const slots = Math.ceil(from.length / 13);
  assert.equal(Math.ceil(to.length / 13), slots, "same slot count");
  // The last slot (order | 0x40) comes first and holds the tail of the name.
  const first = from.slice((slots - 1) * 13, (slots - 1) * 13 + 5);
  const at = img.indexOf(Buffer.from(first, "utf16le")) - 1;
  assert.ok(at >= 0 && img[at] === (0x40 | slots), `LFN of ${from} found`);
  const padded = [...units(to), 0, ...Array(slots * 13).fill(0xffff)].slice(0, slots * 13);
  for (let s = 0; s < slots; s++) {
    const slot = at + s * 32;
    const chunk = padded.slice((slots - 1 - s) * 13, (slots - s) * 13);
    const pos = [1, 3, 5, 7, 9, 14, 16, 18, 20, 22, 24, 28, 30];
    chunk.forEach((u, i) => img.writeUInt16LE(u, slot + pos[i]));
  }
  writeFileSync(path, img);
}

describe("hostile images", { skip: needs("mkfs.vfat", "mcopy", "mkfs.ext4", "debugfs") }, () => {
  let fat = "";
  let ext = "";
  before(async () => {
    fat = await fixture("make-fat-images.sh", "fat");
    ext = await fixture("make-ext-images.sh", "ext");
  });

  test('FAT long names "..", "../../../escape.txt" and "a/b" are extracted under safe names inside DIR', async () => {
    const box = sandbox();
    const img = join(box.work, "evil.img");
    await sh(`cp ${join(fat, "fat12.img")} ${img}`);
    renameLfn(img, "A Long File Name.txt", "../../../escape.txt");
    renameLfn(img, "MiXeD.txt", "..");
    renameLfn(img, "random-300k.bin", "sub/dir/xx/y.bin");
    const ls = await platter(["ls", img]);
    assert.match(ls.stdout, /^\.\.\/\.\.\/\.\.\/escape\.txt$/m, "ls shows the name as stored");
    const r = await platter(["extract", img, "-o", box.out]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, /platter: warning: \/\.\.\/\.\.\/\.\.\/escape\.txt: unsafe name, extracted as "\.\._\.\._\.\._escape\.txt"/);
    const names = readdirSync(box.out);
    for (const n of [".._.._.._escape.txt", "_..", "sub_dir_xx_y.bin"]) assert.ok(names.includes(n), `${n} in ${names}`);
    assert.equal(readFileSync(join(box.out, ".._.._.._escape.txt"), "utf8"), "long name with spaces\n");
    assertNothingOutside(box);
  });

  test("a FAT chain that loops is a clean error for cat and extract, and leaves no partial file", async () => {
    const box = sandbox();
    const img = join(box.work, "loop.img");
    await sh(`cp ${join(fat, "fat12.img")} ${img}`);
    // fragmented.bin is clusters 6..16 then 27..35 (FAT12, 2 KiB clusters); make 16 point back to 6.
    const fatOffset = readFileSync(img).readUInt16LE(14) * 512;
    const at = fatOffset + 16 + (16 >> 1);
    const img12 = readFileSync(img);
    const pair = img12.readUInt16LE(at);
    patch(img, at, [...Buffer.from(Uint16Array.of((pair & 0xf000) | 6).buffer)]);
    const cat = await platter(["cat", img, "/fragmented.bin"]);
    assert.equal(cat.code, 1);
    assert.equal(cat.stderr, "platter: FAT: /fragmented.bin: cluster chain loops back to cluster 6\n");
    const r = await platter(["extract", img, "-o", box.out, "-q"]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /^platter: FAT: \/fragmented.bin: cluster chain loops back to cluster 6\n$/);
    assert.ok(!existsSync(join(box.out, "fragmented.bin")), "no partial file");
    assertNothingOutside(box);
  });

  test("a FAT folder whose entry points at its parent is a directory cycle, not a hang", async () => {
    const box = sandbox();
    const img = join(box.work, "cycle.img");
    await sh(`cp ${join(fat, "fat16.img")} ${img} && ${MTOOLS} mmd -i ${img} ::/docs/a/b/c/loop`);
    // Point /docs/a/b/c/loop at the cluster of /docs.
    const docsCluster = readFileSync(img).readUInt16LE(find(img, "DOCS       ")[0] + 26);
    const loopEntry = find(img, "LOOP       ")[0];
    patch(img, loopEntry + 26, [docsCluster & 0xff, docsCluster >> 8]);
    const r = await platter(["ls", img, "-R"]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /^platter: \/docs\/a\/b\/c\/loop: directory cycle/);
    const x = await platter(["extract", img, "-o", box.out, "-q"]);
    assert.equal(x.code, 1);
    assert.ok(!existsSync(box.out) || readdirSync(box.out).length === 0, "a corrupt tree fails before anything is written");
  });

  test("ext4: '/' and NUL inside names, and a symlink sharing its name with a folder, never escape DIR", async () => {
    const box = sandbox();
    const src = join(box.work, "src");
    mkdirSync(join(src, "escapf"), { recursive: true });
    writeFileSync(join(src, "escapf", "pwned.txt"), "should land inside DIR\n");
    writeFileSync(join(src, "hello.txt"), "hi\n");
    writeFileSync(join(src, "other.txt"), "other\n");
    await sh(`ln -s ${box.outside} ${join(src, "escape")} && ln -s ../../../../../../etc ${join(src, "up")}`);
    const img = join(box.work, "evil.img");
    await sh(`mkfs.ext4 -q -F -O ^metadata_csum -d ${src} ${img} 4M && rm -rf ${src}`);
    // Rename the folder "escapf" to "escape": the symlink to outside and the folder now share a name.
    patch(img, find(img, "escapf")[0], Buffer.from("escape"));
    patch(img, find(img, "hello.txt")[0], Buffer.from("he/lo.txt"));
    patch(img, find(img, "other.txt")[0], Buffer.from("ot\0er.txt"));
    const r = await platter(["extract", img, "-o", box.out]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, /unsafe name, extracted as "he_lo.txt"/);
    assert.match(r.stderr, /unsafe name, extracted as "ot_er.txt"/);
    assert.match(r.stderr, /\/escape: name clashes with one already extracted, extracted as "escape~2"/);
    assert.equal(readFileSync(join(box.out, "escape", "pwned.txt"), "utf8"), "should land inside DIR\n");
    assert.equal(readFileSync(join(box.out, "he_lo.txt"), "utf8"), "hi\n");
    assertNothingOutside(box);
    // The links themselves are kept as they are, never followed.
    const links = await sh(`readlink ${join(box.out, "escape~2")} ${join(box.out, "up")}`);
    assert.equal(links, `${box.outside}\n../../../../../../etc\n`);
  });

  test("ext: a folder entry pointing back at the root is a directory cycle; an extent past the end is a clean error", async () => {
    const box = sandbox();
    const img = join(box.work, "cycle.img");
    await sh(`cp ${join(ext, "small-ext2.img")} ${img}`);
    // The "sub" entry of /dir: inode(4) rec_len(2) name_len=3 file_type=2 "sub" -> inode 2.
    const at = find(img, Buffer.from([3, 2, 0x73, 0x75, 0x62]))[0] - 6;
    patch(img, at, [2, 0, 0, 0]);
    const r = await platter(["ls", img, "-R"]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /^platter: \/dir\/sub: directory cycle/);
    assert.equal((await platter(["ls", img, "/dir/sub"])).code, 0, "plain ls of the looping folder still works");

    const img2 = join(box.work, "extent.img");
    await sh(`cp ${join(ext, "small-ext4.img")} ${img2}`);
    const imap = await sh(`debugfs -R "imap /dir/sub/data.bin" ${img2} 2>/dev/null`);
    const [, block, offset] = /located at block (\d+), offset (0x[0-9a-f]+)/.exec(imap) ?? [];
    const inodeAt = Number(block) * 1024 + Number(offset);
    patch(img2, inodeAt + 40 + 12 + 8, [0xff, 0xff, 0xff, 0x7f]); // first extent's ee_start_lo
    const cat = await platter(["cat", img2, "/dir/sub/data.bin"]);
    assert.equal(cat.code, 1);
    assert.match(cat.stderr, /^platter: ext inode \d+: blocks 2147483647\.\.\d+ are past the end of the filesystem \(2048 blocks\)\n$/);
    patch(img2, inodeAt + 108, [0xff, 0xff, 0, 0]); // i_size_high: a size of 2^48 bytes
    const ls = await platter(["ls", img2, "/dir/sub", "-l"]);
    assert.equal(ls.code, 1);
    assert.match(ls.stderr, /^platter: ext inode \d+: i_size \d+ is larger than any ext file can be\n$/);
  });

  test("a FAT long name of 300 UTF-8 bytes is cut to 255 bytes on extraction, content intact", async () => {
    const box = sandbox();
    const img = join(box.work, "long.img");
    const long = "日".repeat(100);
    writeFileSync(join(box.work, "payload"), "long name\n");
    await sh(`mkfs.vfat -C -F 12 ${img} 1024 >/dev/null && ${MTOOLS} mmd -i ${img} ::/d && ${MTOOLS} mcopy -i ${img} ${join(box.work, "payload")} "::/d/${long}" && rm ${join(box.work, "payload")}`);
    // mtools cuts what it stores at 255 bytes of its own conversion, which still leaves more than 255 UTF-8 bytes.
    const stored = (await platter(["ls", img, "/d"])).stdout.trim();
    assert.ok(stored.startsWith("日日日") && Buffer.byteLength(stored) > 255, stored);
    const r = await platter(["extract", img, "-o", box.out]);
    assert.equal(r.code, 0, r.stderr);
    const [name] = readdirSync(join(box.out, "d"));
    assert.ok(Buffer.byteLength(name) <= 255 && name.startsWith("日日日") && name.endsWith("~"), name);
    assert.equal(readFileSync(join(box.out, "d", name), "utf8"), "long name\n");
  });
});

describe("extracting onto a case-insensitive filesystem (exFAT through FUSE)", { skip: needs("root", "loop", "fuse", "mkfs.exfat", "mount.exfat-fuse", "mkfs.ext4") }, () => {
  test("README and readme, a folder Etc and a symlink etc -> outside: no file is lost or overwritten, nothing escapes", async () => {
    const box = sandbox();
    const src = join(box.work, "src");
    mkdirSync(join(src, "Etc"), { recursive: true });
    writeFileSync(join(src, "README"), "upper\n");
    writeFileSync(join(src, "readme"), "lower\n");
    writeFileSync(join(src, "Etc", "passwd"), "inside\n");
    await sh(`ln -s ${box.outside} ${join(src, "etc")} && ln ${join(src, "README")} ${join(src, "hardlink")}`);
    const img = join(box.work, "names.img");
    await sh(`mkfs.ext4 -q -F -d ${src} ${img} 4M`);
    const exfat = join(box.work, "exfat.img");
    await sh(`truncate -s 16M ${exfat} && mkfs.exfat ${exfat} >/dev/null`);
    const loop = (await sh(`losetup -f --show ${exfat}`)).trim();
    try {
      mkdirSync(box.out);
      await sh(`mount.exfat-fuse ${loop} ${box.out}`);
      try {
        const dest = join(box.out, "x");
        const r = await platter(["extract", img, "-o", dest]);
        assert.equal(r.code, 0, r.stderr);
        assert.match(r.stderr, /\/readme: name clashes with one already extracted, extracted as "readme~2"/);
        assert.match(r.stderr, /\/etc: not extracted: the target filesystem cannot hold symbolic links/);
        assert.match(r.stderr, /\/hardlink: the target filesystem cannot hold hard links; extracted as a copy/);
        assert.equal(readFileSync(join(dest, "README"), "utf8"), "upper\n");
        assert.equal(readFileSync(join(dest, "readme~2"), "utf8"), "lower\n");
        assert.equal(readFileSync(join(dest, "hardlink"), "utf8"), "upper\n");
        assert.equal(readFileSync(join(dest, "Etc", "passwd"), "utf8"), "inside\n");
      } finally {
        await sh(`umount ${box.out}`);
      }
    } finally {
      await sh(`losetup -d ${loop}`);
    }
    assert.deepEqual(readdirSync(box.outside), []);
  });
});
