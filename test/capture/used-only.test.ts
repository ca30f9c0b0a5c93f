/**
 * capture --used-only against the real tools: fixtures made by mkfs.ext4,
 * mkfs.vfat + mtools, mkfs.exfat + exfat-fuse, mkntfs + ntfs-3g, with junk
 * written and deleted before the kept files (test/fixtures/make-used-images.sh).
 * The capture must pass the filesystem's own fsck, hold every kept file as
 * the tool reads it, allocate about what the tool says is used, hold none of
 * the junk, and leave a mapfile that ddrescuelog reads and GNU ddrescue
 * completes into the full image.
 */
import assert from "node:assert/strict";
import { readFileSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { before, describe, test } from "node:test";
import { needs } from "../helpers/env.js";
import { fixture } from "../helpers/fixtures.js";
import { CLI, platter, sh } from "../helpers/run.js";
import { tempDir } from "../helpers/tmp.js";

const TOOLS = ["root", "loop", "fuse", "mkfs.ext4", "e2fsck", "dumpe2fs", "mkfs.vfat", "fsck.vfat", "mcopy", "mkfs.exfat", "fsck.exfat", "dump.exfat"];
const MORE_TOOLS = ["mount.exfat-fuse", "mkntfs", "ntfs-3g", "ntfsfix", "ntfsresize", "sfdisk", "ddrescue", "ddrescuelog", "partclone.ext4"];
const skip = needs(...TOOLS, ...MORE_TOOLS);

type Fs = "ext4" | "fat32" | "exfat" | "ntfs";

let out = "";
let marker = "";

/** Occurrences of the junk marker line in a file. */
async function junkIn(path: string): Promise<number> {
  return Number((await sh(`grep -c -a -F ${marker} ${path} || true`)).trim());
}

/** Bytes allocated to a (sparse) file. */
function allocated(path: string): number {
  return statSync(path).blocks * 512;
}

/** The filesystem's own checker, read-only. */
async function fsck(fs: Fs, img: string): Promise<void> {
  const command = {
    ext4: `e2fsck -fn ${img}`,
    fat32: `fsck.vfat -n ${img}`,
    exfat: `fsck.exfat -n ${img}`,
    ntfs: `ntfsfix -n ${img}`,
  }[fs];
  await sh(command); // throws on a non-zero exit, with the output
}

/** Bytes in use, as the filesystem's tools count them. */
async function usedByTool(fs: Fs, img: string): Promise<number> {
  if (fs === "ext4") {
    const h = await sh(`dumpe2fs -h ${img} 2>/dev/null`);
    const field = (name: string) => Number(new RegExp(`^${name}:\\s+(\\d+)`, "m").exec(h)?.[1]);
    return (field("Block count") - field("Free blocks")) * field("Block size");
  }
  if (fs === "fat32") {
    const [, used] = /(\d+)\/\d+ clusters/.exec(await sh(`fsck.vfat -n ${img}`)) ?? [];
    return Number(used) * 512; // the fixture has one 512-byte sector per cluster
  }
  if (fs === "exfat") {
    const d = await sh(`dump.exfat ${img} 2>/dev/null`);
    const field = (name: string) => Number(new RegExp(`${name}:\\s+(\\d+)`).exec(d)?.[1]);
    // The clusters in use, and the boot regions and FATs before the cluster heap (mkfs.exfat aligns it to 2 MiB).
    return (field("Total Clusters") - field("Free Clusters")) * field("Cluster size") + field("Cluster Heap Offset \\(sector offset\\)") * 512;
  }
  const [, mb] = /Space in use\s*:\s*(\d+) MB/.exec(await sh(`ntfsresize --info -f -n ${img} 2>&1`)) ?? [];
  return Number(mb) * 1e6;
}

/** Copy the files out of `img` with the filesystem's own tools and check them against the fixture's sha256 list. */
async function checkFiles(fs: Fs, img: string, manifest: string): Promise<void> {
  const dir = tempDir();
  const files = join(dir, "files");
  const mnt = join(dir, "mnt");
  await sh(`mkdir -p ${files} ${mnt}`);
  if (fs === "ext4") await sh(`debugfs -R 'rdump / ${files}' ${img} 2>/dev/null`);
  else if (fs === "fat32") await sh(`MTOOLS_SKIP_CHECK=1 mcopy -s -i ${img} ::/keep ::/hello.txt ${files}/`);
  else if (fs === "ntfs") await sh(`ntfs-3g -o ro ${img} ${mnt} && cp -a ${mnt}/. ${files}/; umount ${mnt}`);
  else {
    const loop = (await sh(`losetup -r -f --show ${img}`)).trim();
    try {
      await sh(`mount.exfat-fuse -o ro ${loop} ${mnt} 2>/dev/null && cp -a ${mnt}/. ${files}/; umount ${mnt}`);
    } finally {
      await sh(`losetup -d ${loop}`);
    }
  }
  await sh(`cd ${files} && sha256sum --quiet -c ${manifest}`);
}

/** The '+' blocks of a ddrescue mapfile, as "pos size" in lower-case hex without 0x. */
function rescued(mapfile: string): string[] {
  return readFileSync(mapfile, "utf8")
    .split("\n")
    .filter((line) => /^0x[0-9A-Fa-f]+\s+0x[0-9A-Fa-f]+\s+\+/.test(line))
    .map((line) => line.split(/\s+/).slice(0, 2).map((n) => Number(n).toString(16)).join(" "));
}

/** Cut partition bytes [offset, offset+length) of a disk image out into a file. */
async function cut(disk: string, offset: number, length: number, to: string): Promise<string> {
  await sh(`dd if=${disk} of=${to} bs=512 skip=${offset / 512} count=${length / 512} conv=sparse status=none`);
  return to;
}

before(async () => {
  if (skip) return;
  out = await fixture("make-used-images.sh", "used");
  marker = readFileSync(join(out, "junk-marker"), "utf8").trim();
});

describe("capture --used-only on one filesystem", { skip }, () => {
  for (const fs of ["ext4", "fat32", "exfat", "ntfs"] as const) {
    test(`${fs}: fsck-clean, files as the real tools read them, about what they say is used, no junk`, async () => {
      const source = join(out, `${fs}.img`);
      const dir = tempDir();
      const dest = join(dir, "used.img");
      const map = join(dir, "used.map");
      const r = await platter(["capture", source, dest, "--used-only", "--json", "--map", map]);
      assert.equal(r.code, 0, r.stderr);
      const summary = JSON.parse(r.stdout);
      assert.equal(summary.complete, true);
      assert.equal(summary.partitions.length, 1);
      assert.equal(summary.partitions[0].method, "used blocks");
      assert.ok(summary.bytesSkipped > statSync(source).size / 2, `free space skipped: ${summary.bytesSkipped}`);
      assert.equal(statSync(dest).size, statSync(source).size);

      assert.ok((await junkIn(source)) > 1000, "the fixture's free space holds junk");
      assert.equal(await junkIn(dest), 0, "no junk reaches the image");
      await fsck(fs, dest);
      await checkFiles(fs, dest, `${source}.sha256`);
      const used = await usedByTool(fs, source);
      // Never more than what is used (plus boot areas, rounding); holes of the sparse fixture stay holes, so it may be less.
      assert.ok(allocated(dest) <= used + (1 << 20), `allocated ${allocated(dest)} vs used ${used}`);
      assert.ok(allocated(dest) >= 3_000_000, `allocated ${allocated(dest)}: the kept files are ~3 MB`);

      // partclone's ddrescue domain log (-D) marks the same blocks used as the mapfile marks rescued.
      const domain = join(dir, "partclone.domain");
      await sh(`partclone.${fs} -q -D -s ${source} -o ${domain} -L /dev/null 2>&1`);
      const ours = rescued(map);
      if (fs === "ntfs") {
        // Except NTFS's backup boot sector, past the last cluster: partclone leaves it out, ntfsfix checks it.
        const last = ours.pop() as string;
        assert.equal(last, `${(statSync(source).size - 512).toString(16)} 200`);
      }
      assert.deepEqual(ours, rescued(domain));
    });
  }

  test("the mapfile leaves free space non-tried: ddrescuelog reads it, GNU ddrescue completes it to the full image", async () => {
    const source = join(out, "ext4.img");
    const dir = tempDir();
    const dest = join(dir, "used.img");
    const map = join(dir, "used.map");
    const r = await platter(["capture", source, dest, "--used-only", "--json", "--map", map]);
    assert.equal(r.code, 0, r.stderr);
    const { bytesSkipped } = JSON.parse(r.stdout);
    // ddrescuelog --list-blocks=? lists the non-tried 512-byte blocks: exactly the free space skipped.
    const listed = (await sh(`ddrescuelog -b 512 -l? ${map}`)).trim().split("\n").filter(Boolean).length;
    assert.equal(listed * 512, bytesSkipped);
    await sh(`ddrescue -q ${source} ${dest} ${map}`);
    await sh(`cmp ${source} ${dest}`);
  });

  test("to standard output the image is the same, free space streamed as zeros; --hash is the image's sha256sum", async () => {
    const source = join(out, "ntfs.img");
    const dir = tempDir();
    const dest = join(dir, "used.img");
    const r = await platter(["capture", source, dest, "--used-only", "--hash", "sha256", "--json"]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(JSON.parse(r.stdout).hashes.sha256, (await sh(`sha256sum ${dest}`)).split(" ")[0]);
    await sh(`node ${CLI} capture ${source} - --used-only -q | cmp - ${dest}`);
  });

  test("platter resumes its own used-only map without --used-only into the full image", async () => {
    const source = join(out, "fat32.img");
    const dir = tempDir();
    const dest = join(dir, "used.img");
    const map = join(dir, "used.map");
    assert.equal((await platter(["capture", source, dest, "--used-only", "--map", map, "--quiet"])).code, 0);
    const full = await platter(["capture", source, dest, "--map", map, "--hash", "sha256"]);
    assert.equal(full.code, 0, full.stderr);
    await sh(`cmp ${source} ${dest}`);
    assert.equal(full.stdout.split(" ")[0], (await sh(`sha256sum ${source}`)).split(" ")[0]);
  });
});

describe("capture --used-only on a whole disk", { skip }, () => {
  for (const [disk, parts] of [
    ["mbr", { 1: "ext4", 2: "fat32", 5: "exfat" }],
    ["gpt", { 1: "ntfs", 2: "ext4" }],
  ] as const) {
    test(`${disk}: table and gaps copied, each partition by its used blocks, swap by its header page`, async () => {
      const source = join(out, `${disk}.img`);
      const dir = tempDir();
      const dest = join(dir, "used.img");
      const r = await platter(["capture", source, dest, "--used-only", "--json"]);
      assert.equal(r.code, 0, r.stderr);
      const summary = JSON.parse(r.stdout);
      assert.equal(await junkIn(dest), 0, "no junk reaches the image");
      const table = async (path: string) =>
        JSON.parse(await sh(`sfdisk --json ${path}`)).partitiontable.partitions.map((p: { start: number; size: number; type: string }) => [p.start, p.size, p.type]);
      assert.deepEqual(await table(dest), await table(source), "sfdisk reads the same partition table");
      for (const p of summary.partitions) {
        const fs = (parts as Record<number, Fs>)[p.number];
        if (p.filesystem === "swap") {
          assert.equal(p.method, "swap header");
          const header = join(dir, "swap-header");
          await sh(`dd if=${dest} of=${header} bs=4096 skip=${p.offset / 4096} count=1 status=none`);
          await sh(`dd if=${source} bs=4096 skip=${p.offset / 4096} count=1 status=none | cmp - ${header}`);
          const swap = await cut(dest, p.offset, p.length, join(dir, "swap.img"));
          assert.equal((await sh(`blkid -p -o value -s TYPE ${swap}`)).trim(), "swap");
          continue;
        }
        assert.ok(fs, `partition ${p.number} (${p.filesystem}) is expected`);
        assert.equal(p.method, "used blocks");
        const img = await cut(dest, p.offset, p.length, join(dir, `p${p.number}.img`));
        await fsck(fs, img);
        await checkFiles(fs, img, join(out, `${fs}.img.sha256`));
      }
      assert.deepEqual(
        summary.partitions.map((p: { number: number }) => p.number),
        disk === "mbr" ? [1, 2, 3, 5] : [1, 2, 3],
      );
      assert.match(r.stderr, /partition 3 \(swap\): contents skipped, its 4 KiB header page kept/);
    });
  }
});

describe("capture --used-only refusals and fallbacks", () => {
  test("a stream SOURCE is refused with one line, exit 2", async () => {
    const dir = tempDir();
    const r = await sh(`cat /dev/null | node ${CLI} capture - ${join(dir, "x.img")} --used-only 2>&1; echo "exit $?"`).catch(
      (e: Error) => e.message,
    );
    assert.match(r, /--used-only needs a SOURCE it can read at random/);
    assert.match(r, /exit 2/);
  });

  test("overlapping partitions: the whole disk is copied, with a warning", async () => {
    const dir = tempDir();
    const img = join(dir, "overlap.img");
    const disk = Buffer.alloc(4 << 20, 0x5a);
    const entry = (i: number, start: number, sectors: number) => {
      const at = 446 + i * 16;
      disk.fill(0, at, at + 16);
      disk[at + 4] = 0x83;
      disk.writeUInt32LE(start, at + 8);
      disk.writeUInt32LE(sectors, at + 12);
    };
    disk.fill(0, 0, 512);
    entry(0, 2048, 4096);
    entry(1, 4096, 2048);
    disk.writeUInt16LE(0xaa55, 510);
    writeFileSync(img, disk);
    const r = await platter(["capture", img, join(dir, "out.img"), "--used-only", "--json"]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, /partition 2 of .* overlaps the partition before it: the whole disk is copied/);
    assert.equal(JSON.parse(r.stdout).bytesSkipped, 0);
    await sh(`cmp ${img} ${join(dir, "out.img")}`);
  });

  test("an NTFS $Bitmap record torn by a partial write is copied in full, with a warning", { skip: needs("mkntfs") }, async () => {
    const dir = tempDir();
    const img = join(dir, "ntfs.img");
    await sh(`truncate -s 8M ${img} && mkntfs -q -F -f ${img}`);
    // Break the update sequence of MFT record 6 ($Bitmap): its first stride's last two bytes.
    const boot = readFileSync(img).subarray(0, 512);
    const clusterSize = boot.readUInt16LE(0x0b) * boot[0x0d];
    const mft = Number(boot.readBigUInt64LE(0x30)) * clusterSize;
    const record = boot.readInt8(0x40) > 0 ? boot.readInt8(0x40) * clusterSize : 2 ** -boot.readInt8(0x40);
    await sh(`printf '\\xde\\xad' | dd of=${img} bs=1 seek=${mft + 6 * record + 510} conv=notrunc status=none`);
    const r = await platter(["capture", img, join(dir, "out.img"), "--used-only", "--json"]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, /update sequence mismatch.*copied in full/);
    const summary = JSON.parse(r.stdout);
    assert.equal(summary.partitions[0].method, "in full");
    assert.equal(summary.bytesSkipped, 0);
    await sh(`cmp ${img} ${join(dir, "out.img")}`);
  });
});
