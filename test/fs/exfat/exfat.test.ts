import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { before, describe, test } from "node:test";
import { CorruptImageError } from "../../../src/errors.js";
import { entrySetChecksum, type ExfatFileSystem, type ExfatNode, openExfat } from "../../../src/fs/exfat/index.js";
import { openSource } from "../../../src/io/file-source.js";
import { listAll } from "../../../src/fs/walk.js";
import { MemorySource } from "../../../src/io/memory-source.js";
import { needs } from "../../helpers/env.js";
import { fixture } from "../../helpers/fixtures.js";
import { platter } from "../../helpers/run.js";
import { tempDir } from "../../helpers/tmp.js";

const skip = needs("root", "loop", "fuse", "mkfs.exfat", "mount.exfat-fuse", "losetup");
const IMAGES = ["c4k", "c512", "s4k"];

async function withImage<T>(path: string, fn: (fs: ExfatFileSystem) => Promise<T>): Promise<T> {
  const source = await openSource(path);
  try {
    return await fn(await openExfat(source));
  } finally {
    await source.close();
  }
}

/** Every node under the root with its path, depth first. */
async function walk(fs: ExfatFileSystem): Promise<Array<[string, ExfatNode]>> {
  const out: Array<[string, ExfatNode]> = [];
  const visit = async (dir: ExfatNode, prefix: string) => {
    for await (const { name, node } of fs.list(dir)) {
      out.push([prefix + name, node]);
      if (node.stat.type === "dir") await visit(node, `${prefix}${name}/`);
    }
  };
  await visit(await fs.root(), "");
  return out;
}

const byPath = (a: string, b: string) => Buffer.compare(Buffer.from(a), Buffer.from(b));

describe("exFAT reader", { skip }, () => {
  let dir = "";
  before(async () => {
    dir = await fixture("make-exfat-images.sh", "exfat");
  });

  for (const name of IMAGES) {
    test(`${name}: names, types, sizes and mtimes equal what the exfat-fuse mount shows (find -printf)`, async () => {
      const image = join(dir, `${name}.img`);
      const expected = readFileSync(`${image}.find`, "utf8").trimEnd().split("\n");
      const actual = await withImage(image, async (fs) =>
        (await walk(fs))
          .sort(([a], [b]) => byPath(a, b))
          .map(([path, n]) => `${n.stat.type === "dir" ? "d" : "f"} ${n.stat.size} ${Math.floor(n.stat.mtime)}.0000000000 ${path}`),
      );
      assert.deepEqual(actual, expected.sort((a, b) => byPath(a.split(" ").slice(3).join(" "), b.split(" ").slice(3).join(" "))));
    });

    test(`${name}: every file's bytes equal what the exfat-fuse mount reads (sha256)`, async () => {
      const image = join(dir, `${name}.img`);
      const expected = readFileSync(`${image}.sha256`, "utf8").trimEnd().split("\n");
      const actual = await withImage(image, async (fs) => {
        const lines: string[] = [];
        for (const [path, node] of await walk(fs)) {
          if (node.stat.type !== "file") continue;
          lines.push(`${createHash("sha256").update(await fs.read(node, 0, node.stat.size)).digest("hex")}  ./${path}`);
        }
        return lines.sort((a, b) => byPath(a.slice(66), b.slice(66)));
      });
      assert.deepEqual(actual, expected);
    });
  }

  test("volume label, FAT chains and NoFatChain files, case-insensitive lookup, deleted entries skipped", async () => {
    await withImage(join(dir, "c512.img"), async (fs) => {
      assert.equal(fs.label, "PLATTERX");
      const root = await fs.root();
      const frag = (await fs.lookup(root, "FRAG")) as ExfatNode;
      assert.ok(frag, "case-insensitive lookup of frag");
      const holes = (await fs.lookup(frag, "fills-the-holes.bin")) as ExfatNode;
      assert.equal(holes.entry?.noFatChain, false, "written into holes: a FAT chain");
      await fs.read(holes, 0, 1);
      assert.ok((holes.runs?.length ?? 0) > 1, `fragmented into ${holes.runs?.length} runs`);
      const big = (await fs.lookup(root, "big.bin")) as ExfatNode;
      assert.equal(big.entry?.noFatChain, true, "written in one go: contiguous");
      const many = (await listAll(fs, (await fs.lookup(root, "many")) as ExfatNode)).map((e) => e.name);
      assert.equal(many.length, 540);
      assert.ok(!many.includes("entry number 001.txt") && many.includes("entry number 002.txt"));
      assert.equal(await fs.lookup(root, "no such file"), undefined);
    });
  });

  test("bytes past ValidDataLength read as zeros and are not data ranges (entry patched, set checksum redone)", async () => {
    const image = readFileSync(join(dir, "c4k.img"));
    const fs = await openExfat(new MemorySource(image));
    const hello = (await fs.lookup(await fs.root(), "hello.txt")) as ExfatNode;
    const text = await fs.read(hello, 0, hello.stat.size);
    // Find hello.txt's entry set in the root directory and set ValidDataLength to 5.
    const rootStart = (fs.boot.clusterHeapOffset + (fs.boot.rootCluster - 2) * fs.boot.sectorsPerCluster) * fs.boot.bytesPerSector;
    const nameAt = image.indexOf(Buffer.from("hello.txt", "utf16le"), rootStart);
    const setStart = nameAt - 2 - 64;
    assert.equal(image[setStart], 0x85);
    const set = image.subarray(setStart, setStart + 96);
    set.writeBigUInt64LE(5n, 32 + 8);
    set.writeUInt16LE(entrySetChecksum(set), 2);
    const patched = await openExfat(new MemorySource(image));
    const node = (await patched.lookup(await patched.root(), "hello.txt")) as ExfatNode;
    const expected = Buffer.concat([text.subarray(0, 5), Buffer.alloc(text.length - 5)]);
    assert.ok((await patched.read(node, 0, node.stat.size)).equals(expected));
    assert.deepEqual(await patched.dataRanges(node), [[0, 5]]);
    // The 10 ms increment and the UTC offset (+01:00, in quarter hours) move the mtime.
    set[21] = 189;
    set[23] = 0x80 | 4;
    set.writeUInt16LE(entrySetChecksum(set), 2);
    const shifted = await openExfat(new MemorySource(image));
    const moved = (await shifted.lookup(await shifted.root(), "hello.txt")) as ExfatNode;
    assert.equal(moved.stat.mtime, Date.UTC(2021, 2, 4, 5, 6, 6) / 1000 + 1.89 - 3600);
    // A wrong set checksum is corruption, named as such.
    set.writeUInt16LE(entrySetChecksum(set) ^ 1, 2);
    const broken = await openExfat(new MemorySource(image));
    const failure = await listAll(broken, await broken.root()).catch((e: unknown) => e);
    assert.ok(failure instanceof CorruptImageError && /checksum/.test(failure.message), String(failure));
  });

  test('an entry set named ".." is listed as stored, not dropped; extract renames it "_.." with a warning', async () => {
    const image = readFileSync(join(dir, "c4k.img"));
    const fs = await openExfat(new MemorySource(image));
    const hello = (await fs.lookup(await fs.root(), "hello.txt")) as ExfatNode;
    const rootStart = (fs.boot.clusterHeapOffset + (fs.boot.rootCluster - 2) * fs.boot.sectorsPerCluster) * fs.boot.bytesPerSector;
    const nameAt = image.indexOf(Buffer.from("hello.txt", "utf16le"), rootStart);
    const setStart = nameAt - 2 - 64;
    const set = image.subarray(setStart, setStart + 96);
    assert.equal(set[0], 0x85);
    set[32 + 3] = 2; // NameLength
    set.fill(0, 64 + 2, 96);
    set.write("..", 64 + 2, "utf16le");
    set.writeUInt16LE(entrySetChecksum(set), 2);
    const patched = await openExfat(new MemorySource(image));
    const names = (await listAll(patched, await patched.root())).map((e) => e.name);
    assert.ok(names.includes("..") && !names.includes("hello.txt"), names.join(", "));
    const tmp = tempDir();
    writeFileSync(join(tmp, "dots.img"), image);
    const r = await platter(["extract", join(tmp, "dots.img"), "-o", join(tmp, "out"), "-q"]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, /^platter: warning: \/\.\.: unsafe name, extracted as "_\.\."$/m);
    assert.equal(readFileSync(join(tmp, "out", "_..")).length, hello.stat.size);
  });

  test("a damaged main boot region falls back to the backup; both damaged is a clean error", async () => {
    const image = readFileSync(join(dir, "c4k.img"));
    image[100] = (image[100] as number) ^ 0xff; // serial number: only the checksum notices
    const fs = await openExfat(new MemorySource(image));
    assert.equal(fs.label, "PLATTERX");
    image[12 * 512 + 100] = (image[12 * 512 + 100] as number) ^ 0xff;
    await assert.rejects(openExfat(new MemorySource(image)), /boot checksum mismatch/);
  });

  test("a FAT chain that loops is corrupt: a file's chain coming back inside its own length, and the root's endless one", async () => {
    const image = readFileSync(join(dir, "c512.img"));
    const fs = await openExfat(new MemorySource(image));
    const fatStart = fs.boot.fatOffset * fs.boot.bytesPerSector;
    const frag = (await fs.lookup(await fs.root(), "frag")) as ExfatNode;
    const holes = (await fs.lookup(frag, "fills-the-holes.bin")) as ExfatNode;
    await fs.read(holes, 0, 1);
    const firstRun = holes.runs?.[0];
    assert.ok(firstRun && (holes.runs?.length ?? 0) > 1);
    // The first run's last cluster now points back to the file's first cluster: the file's
    // size still asks for more clusters, which would be the same ones read again (wrong bytes).
    image.writeUInt32LE(firstRun.cluster, fatStart + 4 * (firstRun.cluster + firstRun.count - 1));
    const looped = await openExfat(new MemorySource(image));
    const node = (await looped.lookup((await looped.lookup(await looped.root(), "frag")) as ExfatNode, "fills-the-holes.bin")) as ExfatNode;
    await assert.rejects(looped.read(node, 0, node.stat.size), (err) => err instanceof CorruptImageError && /FAT chain loops/.test(err.message));
    const tmp = tempDir();
    writeFileSync(join(tmp, "loop.img"), image);
    const cat = await platter(["cat", join(tmp, "loop.img"), "/frag/fills-the-holes.bin"]);
    assert.equal(cat.code, 1);
    assert.equal(cat.stderr, 'platter: exFAT "fills-the-holes.bin": FAT chain loops (it comes back to a cluster it has passed)\n');
    // The root directory has no size: it is walked to its end mark, and a loop must be noticed.
    image.writeUInt32LE(fs.boot.rootCluster, fatStart + 4 * fs.boot.rootCluster);
    await assert.rejects(openExfat(new MemorySource(image)), /FAT chain loops/);
  });
});
