/**
 * ownersInFilesystem: each damaged range gets the files debugfs places in
 * it, and only those; hard links are named by every path with one read of
 * the file's map; the list stops at its cap and counts the rest, however
 * many files a range holds; a file whose map cannot be read is warned about.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { before, describe, test } from "node:test";
import { type ExtFileSystem, type ExtNode, openExt } from "../../src/fs/ext/index.js";
import type { FileExtent, FileSystem } from "../../src/fs/types.js";
import { ownersInFilesystem } from "../../src/image/damage-owners.js";
import { openSource } from "../../src/io/file-source.js";
import { CorruptImageError } from "../../src/errors.js";
import { needs } from "../helpers/env.js";
import { FakeFs, type FakeNode } from "../helpers/fake-fs.js";
import { fixture } from "../helpers/fixtures.js";
import { sh } from "../helpers/run.js";

describe("ownersInFilesystem on ext4.img", { skip: needs("debugfs", "mkfs.ext4", "e2fsck") }, () => {
  let img = "";
  before(async () => {
    img = join(await fixture("make-ext-images.sh", "ext"), "ext4.img");
  });

  async function withExt<T>(fn: (fs: ExtFileSystem) => Promise<T>): Promise<T> {
    const source = await openSource(img);
    try {
      return await fn(await openExt(source));
    } finally {
      await source.close();
    }
  }

  const firstBlock = async (path: string) => Number((await sh(`debugfs -R 'blocks ${path}' ${img} 2>/dev/null`)).trim().split(/\s+/)[0]);

  test("two ranges, each the first block of a file: each names its file, as debugfs blocks places them; a hard-linked file by all three of its paths, its map read once", async () => {
    await withExt(async (fs) => {
      const bs = fs.superblock.blockSize;
      const hostname = (await firstBlock("/etc/hostname")) * bs;
      const hardA = (await firstBlock("/links/hard-a")) * bs;
      const ranges: Array<[number, number]> = [hostname, hardA].sort((a, b) => a - b).map((at) => [at, bs]);
      const mapsRead = new Map<number, number>();
      const extents = fs.extents.bind(fs);
      fs.extents = (node: ExtNode): AsyncGenerator<FileExtent> => {
        mapsRead.set(node.ino, (mapsRead.get(node.ino) ?? 0) + 1);
        return extents(node);
      };
      const warnings: string[] = [];
      const owners = await ownersInFilesystem(fs, ranges, (w) => warnings.push(w));
      const namedAt = (at: number) => owners[ranges.findIndex(([start]) => start === at)]?.files.map((f) => `${f.path} ${f.offset}+${f.length}${f.map ? " map" : ""}`).sort();
      assert.deepEqual(namedAt(hostname), ["/etc/hostname 0+8"]);
      assert.deepEqual(namedAt(hardA), ["/home/alice/hard-c 0+7", "/links/hard-a 0+7", "/links/hard-b 0+7"]);
      const hardIno = Number(/Inode: (\d+)/.exec(await sh(`debugfs -R 'stat /links/hard-a' ${img} 2>/dev/null`))?.[1]);
      assert.equal(mapsRead.get(hardIno), 1, "one read of the map for three names");
      assert.ok([...mapsRead.values()].every((n) => n === 1), "every inode's map read once");
      assert.deepEqual(warnings, []);
    });
  });

  test("the whole filesystem as one range: the first `limit` files listed with all their hits, the rest counted", async () => {
    await withExt(async (fs) => {
      const all = [[0, fs.superblock.blocksCount * fs.superblock.blockSize]] as Array<[number, number]>;
      const [everything] = await ownersInFilesystem(fs, all, () => {}, 100_000);
      const [capped] = await ownersInFilesystem(fs, all, () => {}, 7);
      assert.ok(everything && capped);
      assert.ok(everything.files.length > 3000, "every file of the tree, the 3000-entry folder's too");
      assert.equal(everything.filesNotListed, 0);
      // A file comes with all its hits (its bytes, its inode or map) or is counted once.
      const paths = [...new Set(everything.files.map((f) => f.path))];
      assert.deepEqual(capped.files, everything.files.filter((f) => paths.indexOf(f.path) < 7));
      assert.equal(capped.filesNotListed, paths.length - 7);
      assert.equal(capped.metadata.length, 7);
      assert.equal(capped.metadataNotListed, everything.metadata.length - 7);
      assert.ok(everything.metadata.some((m) => m.what === "journal"));
    });
  });
});

describe("ownersInFilesystem on a filesystem double", () => {
  /** Each file at 4 KiB times its id; a file with `failAfter` set has a map that cannot be read. */
  function withExtents(fs: FakeFs): FileSystem<FakeNode> {
    return Object.assign(fs, {
      async *extents(node: FakeNode): AsyncGenerator<FileExtent> {
        if (node.spec.failAfter !== undefined) throw new CorruptImageError("extent tree block 7 is past the end");
        if (node.stat.type === "file") yield { fileOffset: 0, length: node.stat.size, fsOffset: (node.stat.id as number) * 4096, fsLength: node.stat.size };
      },
    });
  }

  test("a folder of 200,000 files all in one range: 100 named, the rest counted, the walk in stored order past the sort budget", async () => {
    const count = 200_000;
    const fs = withExtents(new FakeFs({ children: () => Array.from({ length: count }, (_, i) => [`f${i}`, { id: i + 1, content: 100 }] as [string, { id: number; content: number }]) }));
    const warnings: string[] = [];
    const [owners] = await ownersInFilesystem(fs, [[0, (count + 2) * 4096]], (w) => warnings.push(w));
    assert.equal(owners?.files.length, 100);
    assert.equal(owners?.filesNotListed, count - 100);
    assert.deepEqual(owners?.files.slice(0, 2), [{ path: "/f0", offset: 0, length: 100 }, { path: "/f1", offset: 0, length: 100 }]);
    assert.match(warnings.join("\n"), /listed in the order they are stored/);
  });

  test("a file whose map cannot be read: one warning naming it and the count, the other files still named", async () => {
    const fs = withExtents(new FakeFs({ children: [["broken", { id: 1, content: 10, failAfter: 0 }], ["also-broken", { id: 2, content: 10, failAfter: 0 }], ["fine", { id: 3, content: 10 }]] }));
    const warnings: string[] = [];
    const [owners] = await ownersInFilesystem(fs, [[0, 10 * 4096]], (w) => warnings.push(w));
    assert.deepEqual(owners?.files, [{ path: "/fine", offset: 0, length: 10 }]);
    assert.deepEqual(warnings, ["where 2 files are stored could not be read, so they are not named: /also-broken: extent tree block 7 is past the end"]);
  });
});
