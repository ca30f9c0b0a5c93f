/**
 * FileSystem.extents() and regions() place a file's pieces where the real
 * tools do: debugfs stat/imap/stats (ext extent trees, block maps with
 * indirect blocks, sparse and preallocated files), mshowfat and fsck.fat
 * (FAT cluster chains), xorriso report_lba (ISO 9660 sections, a
 * multi-extent file); for exFAT, whose tools print no cluster chains, the
 * bytes found at the pieces hash as the exfat-fuse mount read the file, and
 * for squashfs, written uncompressed by mksquashfs, they are the source's.
 */
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { before, describe, test } from "node:test";
import { openExfat } from "../../src/fs/exfat/index.js";
import { openExt } from "../../src/fs/ext/index.js";
import { openFat } from "../../src/fs/fat/index.js";
import { openIso9660 } from "../../src/fs/iso9660/index.js";
import { openSquashfs } from "../../src/fs/squashfs/index.js";
import type { FileExtent, FileSystem, FsNode, FsRegion } from "../../src/fs/types.js";
import { walk } from "../../src/fs/walk.js";
import type { BlockSource } from "../../src/io/block-source.js";
import { openSource } from "../../src/io/file-source.js";
import { pattern } from "../helpers/data.js";
import { needs } from "../helpers/env.js";
import { fixture } from "../helpers/fixtures.js";
import { platter, sh } from "../helpers/run.js";
import { tempDir } from "../helpers/tmp.js";

async function withFs<F, T>(path: string, open: (s: BlockSource) => Promise<F>, fn: (fs: F, source: BlockSource) => Promise<T>): Promise<T> {
  const source = await openSource(path);
  try {
    return await fn(await open(source), source);
  } finally {
    await source.close();
  }
}

async function nodeAt<N extends FsNode>(fs: FileSystem<N>, path: string): Promise<N> {
  let node = await fs.root();
  for (const name of path.split("/").filter(Boolean)) node = (await fs.lookup(node, name)) ?? assert.fail(`${path}: no ${name}`);
  return node;
}

async function piecesOf<N extends FsNode>(fs: FileSystem<N>, node: N): Promise<FileExtent[]> {
  const out: FileExtent[] = [];
  for await (const piece of (fs.extents as (n: N) => AsyncIterable<FileExtent>).call(fs, node)) out.push(piece);
  return out;
}

async function regionsOf(fs: FileSystem): Promise<FsRegion[]> {
  const out: FsRegion[] = [];
  for await (const region of (fs.regions as () => AsyncIterable<FsRegion>).call(fs)) out.push(region);
  return out;
}

/** [first logical block, first physical block, blocks], joined where both run on. */
type Run = [number, number, number];
function joinRuns(runs: Run[]): Run[] {
  const out: Run[] = [];
  for (const run of [...runs].sort((a, b) => a[0] - b[0])) {
    const last = out.at(-1);
    if (last && last[0] + last[2] === run[0] && last[1] + last[2] === run[1]) last[2] += run[2];
    else out.push([...run]);
  }
  return out;
}

/** debugfs stat's EXTENTS/BLOCKS list: the written data runs, and the blocks of the map (ETBn, IND, DIND, TIND). */
function debugfsLayout(stat: string): { data: Run[]; map: number[] } {
  const list = stat.slice(stat.search(/^(EXTENTS|BLOCKS):$/m));
  const data: Run[] = [];
  const map: number[] = [];
  for (const [, what, unwritten, p1, p2] of list.matchAll(/\(([^)\[]+)(\[u\])?\):(\d+)(?:-(\d+))?/g)) {
    if (/^(ETB\d+|IND|DIND|TIND)$/.test(what as string)) {
      map.push(Number(p1));
      continue;
    }
    if (unwritten) continue;
    const [l1] = (what as string).split("-").map(Number);
    data.push([l1 as number, Number(p1), Number(p2 ?? p1) - Number(p1) + 1]);
  }
  return { data: joinRuns(data), map: map.sort((a, b) => a - b) };
}

describe("extents() and regions() agree with the real tools", () => {
  describe("ext2/3/4, against debugfs", { skip: needs("debugfs", "mkfs.ext4", "e2fsck") }, () => {
    let dir = "";
    before(async () => {
      dir = await fixture("make-ext-images.sh", "ext");
    });

    const cases: Array<[string, string]> = [
      ["ext4.img", "/fragmented.bin"], // an extent tree with an index block
      ["ext4.img", "/sparse.bin"],
      ["ext4.img", "/preallocated"], // an unwritten extent: not the file's bytes
      ["ext4.img", "/big-dir"], // an htree directory
      ["ext3-1k.img", "/sparse.bin"], // a block map: indirect and double indirect blocks
      ["ext3-1k.img", "/huge-sparse.bin"], // triple indirect
      ["ext2.img", "/home/alice/random-300k.bin"],
    ];
    for (const [image, path] of cases) {
      test(`${image} ${path}: data runs, map blocks and inode where debugfs stat and imap put them`, async () => {
        const img = join(dir, image);
        const theirs = debugfsLayout(await sh(`debugfs -R 'stat ${path}' ${img} 2>/dev/null`));
        const imap = await sh(`debugfs -R 'imap ${path}' ${img} 2>/dev/null`);
        const [, block, offset] = /located at block (\d+), offset (0x[0-9a-f]+)/.exec(imap) ?? assert.fail(imap);
        await withFs(img, openExt, async (fs) => {
          const bs = fs.superblock.blockSize;
          const node = await nodeAt(fs, path);
          const pieces = await piecesOf(fs, node);
          const [inode, ...rest] = pieces;
          assert.deepEqual(inode, { fileOffset: 0, length: node.stat.size, fsOffset: Number(block) * bs + Number(offset), fsLength: fs.superblock.inodeSize, map: true });
          const data = rest.filter((p) => !p.map);
          assert.ok(data.every((p) => p.fsLength === p.length && p.fileOffset % bs === 0 && p.fsOffset % bs === 0));
          assert.deepEqual(joinRuns(data.map((p) => [p.fileOffset / bs, p.fsOffset / bs, Math.ceil(p.length / bs)])), theirs.data);
          assert.deepEqual(rest.filter((p) => p.map).map((p) => p.fsOffset / bs).sort((a, b) => a - b), theirs.map);
        });
      });
    }

    for (const image of ["ext4.img", "ext4-1k.img", "ext4-64k.img", "ext4-metabg.img", "ext3-1k.img", "ext2.img"]) {
      test(`${image}: each group's bitmaps and inode table where debugfs stats puts them; the journal's and resize inode's blocks as debugfs stat lists them`, async () => {
        const img = join(dir, image);
        const stats = await sh(`debugfs -R stats ${img} 2>/dev/null`);
        await withFs(img, openExt, async (fs) => {
          const bs = fs.superblock.blockSize;
          const regions = await regionsOf(fs);
          const at = (what: string) => regions.find((r) => r.what === what) ?? assert.fail(`no ${what}`);
          let groups = 0;
          for (const [, g, blockBitmap, inodeBitmap, first, last] of stats.matchAll(/Group\s+(\d+): block bitmap at (\d+), inode bitmap at (\d+), inode table at (\d+)(?:-(\d+))?/g)) {
            assert.equal(at(`block bitmap of group ${g}`).fsOffset, Number(blockBitmap) * bs);
            assert.equal(at(`inode bitmap of group ${g}`).fsOffset, Number(inodeBitmap) * bs);
            const table = at(`inode table of group ${g}`);
            assert.equal(table.fsOffset, Number(first) * bs);
            if (last !== undefined) assert.equal(table.length, (Number(last) - Number(first) + 1) * bs);
            groups++;
          }
          assert.ok(groups > 0);
          for (const [ino, what] of [[8, "journal"], [7, "reserved GDT blocks (resize inode)"]] as const) {
            const theirs = debugfsLayout(await sh(`debugfs -R 'stat <${ino}>' ${img} 2>/dev/null`));
            const blocks = regions.filter((r) => r.what === what).reduce((n, r) => n + r.length / bs, 0);
            assert.equal(blocks, theirs.data.reduce((n, r) => n + r[2], 0) + theirs.map.length, `${what}: as many blocks as debugfs lists`);
          }
        });
      });
    }
  });

  describe("FAT12/16/32, against mshowfat and fsck.fat", { skip: needs("mkfs.vfat", "mcopy", "mshowfat", "fsck.fat") }, () => {
    let dir = "";
    before(async () => {
      dir = await fixture("make-fat-images.sh", "fat");
    });

    for (const image of ["fat12.img", "fat16.img", "fat32.img"]) {
      test(`${image}: the clusters of a fragmented file and of a folder are the chains mshowfat prints; the FATs where fsck.fat -v says`, async () => {
        const img = join(dir, image);
        const verbose = await sh(`fsck.fat -n -v ${img}`);
        const dataStart = Number(/Data area starts at byte (\d+)/.exec(verbose)?.[1]);
        const firstFat = Number(/First FAT starts at byte (\d+)/.exec(verbose)?.[1]);
        await withFs(img, openFat, async (fs) => {
          const cs = fs.boot.clusterSize;
          for (const path of ["/fragmented.bin", "/docs", "/random-300k.bin"]) {
            const chain = await sh(`mshowfat -i ${img} ::${path}`, { env: { MTOOLS_SKIP_CHECK: "1" } });
            const clusters = [...chain.matchAll(/<(\d+)(?:-(\d+))?>/g)].map(([, a, b]) => [Number(a), Number(b ?? a)] as const);
            const node = await nodeAt(fs, path);
            const pieces = await piecesOf(fs, node);
            assert.deepEqual(
              pieces.map((p) => [(p.fsOffset - dataStart) / cs + 2, (p.fsOffset - dataStart) / cs + 1 + Math.ceil(p.length / cs)]),
              clusters,
              path,
            );
            if (node.stat.type === "file") assert.equal(pieces.reduce((n, p) => n + p.length, 0), node.stat.size);
          }
          const regions = await regionsOf(fs);
          assert.equal(regions.find((r) => r.what.startsWith("FAT 1"))?.fsOffset, firstFat);
        });
      });
    }
  });

  describe("exFAT, against the exfat-fuse mount", { skip: needs("root", "loop", "fuse", "mkfs.exfat", "mount.exfat-fuse", "losetup") }, () => {
    let dir = "";
    before(async () => {
      dir = await fixture("make-exfat-images.sh", "exfat");
    });

    for (const image of ["c4k", "c512", "s4k"]) {
      test(`${image}: the bytes at every file's pieces, holes past ValidDataLength as zeros, hash as the mount read each file`, async () => {
        const img = join(dir, `${image}.img`);
        const expected = new Map(
          readFileSync(`${img}.sha256`, "utf8")
            .trim()
            .split("\n")
            .map((l) => [l.slice(66).replace(/^\.\//, "/"), l.slice(0, 64)] as const),
        );
        await withFs(img, openExfat, async (fs, source) => {
          let files = 0;
          for await (const { path, node } of walk(fs, await fs.root(), "/")) {
            if (node.stat.type !== "file") continue;
            const bytes = Buffer.alloc(node.stat.size);
            for (const p of await piecesOf(fs, node)) await source.read(p.fsOffset, p.length, bytes.subarray(p.fileOffset, p.fileOffset + p.length));
            assert.equal(createHash("sha256").update(bytes).digest("hex"), expected.get(path), path);
            files++;
          }
          assert.equal(files, expected.size);
        });
      });
    }
  });

  describe("ISO 9660, against xorriso report_lba", { skip: needs("xorriso") }, () => {
    test("a small file and a multi-extent 5 GiB file: the sections xorriso reports, in file order", async () => {
      const dir = tempDir();
      const src = join(dir, "src");
      const iso = join(dir, "big.iso");
      try {
        await sh(`mkdir ${src} && truncate -s ${5 * 2 ** 30} ${src}/five.bin && printf data > ${src}/small.txt`);
        assert.equal((await platter(["iso", src, "-o", iso])).code, 0);
        const report = await sh(`xorriso -indev ${iso} -find / -type f -exec report_lba -- 2>/dev/null`);
        // One line per section: its start and blocks, and the size of the whole file; so every section but the last is whole blocks.
        const theirs = new Map<string, Array<[number, number]>>();
        for (const [, , lba, blocks, size, path] of report.matchAll(/^File data lba:\s*(\d+)\s*,\s*(\d+)\s*,\s*(\d+)\s*,\s*(\d+)\s*,\s*'(.*)'$/gm)) {
          const before = theirs.get(path as string) ?? [];
          const done = before.reduce((n, [, length]) => n + length, 0);
          theirs.set(path as string, [...before, [Number(lba) * 2048, Math.min(Number(blocks) * 2048, Number(size) - done)]]);
        }
        assert.equal(theirs.get("/five.bin")?.length, 2, "xorriso sees a multi-extent file");
        await withFs(iso, (s) => openIso9660(s), async (fs) => {
          for (const [path, sections] of theirs) {
            const pieces = await piecesOf(fs, await nodeAt(fs, path));
            assert.deepEqual(pieces.map((p) => [p.fsOffset, p.length]), sections, path);
            let at = 0;
            for (const p of pieces) {
              assert.equal(p.fileOffset, at);
              at += p.length;
            }
          }
        });
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    });
  });

  describe("squashfs, against what mksquashfs stored", { skip: needs("mksquashfs") }, () => {
    test("uncompressed data blocks hold the source's blocks, a sparse block has no piece, and the tail is in its fragment", async () => {
      const dir = tempDir();
      const data = pattern(5 * 4096 + 1000, 17);
      data.fill(0, 2 * 4096, 3 * 4096); // a sparse block
      await sh(`mkdir ${dir}/src`);
      writeFileSync(join(dir, "src", "file.bin"), data);
      writeFileSync(join(dir, "src", "tiny.txt"), "tail only\n");
      const image = join(dir, "fs.sqfs");
      await sh(`mksquashfs ${dir}/src ${image} -b 4096 -noI -noD -noF -noX -no-xattrs -quiet -noappend`);
      const raw = readFileSync(image);
      await withFs(image, openSquashfs, async (fs) => {
        const pieces = await piecesOf(fs, await nodeAt(fs, "/file.bin"));
        assert.deepEqual(pieces.map((p) => p.fileOffset), [0, 4096, 3 * 4096, 4 * 4096, 5 * 4096]);
        for (const p of pieces.slice(0, -1)) assert.ok(raw.subarray(p.fsOffset, p.fsOffset + p.fsLength).equals(data.subarray(p.fileOffset, p.fileOffset + p.length)));
        const tail = pieces.at(-1) as FileExtent;
        assert.equal(tail.length, 1000);
        assert.ok(raw.subarray(tail.fsOffset, tail.fsOffset + tail.fsLength).includes(data.subarray(5 * 4096)), "the tail is in the fragment block");
        const [tiny] = await piecesOf(fs, await nodeAt(fs, "/tiny.txt"));
        assert.ok(raw.subarray(tiny?.fsOffset, (tiny?.fsOffset ?? 0) + (tiny?.fsLength ?? 0)).includes("tail only\n"));
      });
    });
  });
});
