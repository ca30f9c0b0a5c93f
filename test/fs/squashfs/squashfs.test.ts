import assert from "node:assert/strict";
import { readdirSync, readFileSync, readlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { before, describe, test } from "node:test";
import { decodeSuperblock, openSquashfs, type SquashfsNode } from "../../../src/fs/squashfs/index.js";
import { openSource } from "../../../src/io/file-source.js";
import { nameBytes } from "../../../src/fs/names.js";
import { listAll } from "../../../src/fs/walk.js";
import { MemorySource } from "../../../src/io/memory-source.js";
import { CorruptImageError } from "../../../src/errors.js";
import { needs } from "../../helpers/env.js";
import { nodeWithPeak } from "../../helpers/peak-rss.js";
import { CLI, platter, sh } from "../../helpers/run.js";
import { tempDir } from "../../helpers/tmp.js";
import { fixture } from "../../helpers/fixtures.js";
import { llnLines, normaliseLln, sha256Lines } from "./helpers.js";

const skip = needs("root", "mksquashfs", "unsquashfs", "setfattr");
const IMAGES = ["gzip", "xz", "zstd", "lz4", "nocomp"];

async function withImage<T>(dir: string, name: string, fn: (fs: Awaited<ReturnType<typeof openSquashfs>>) => Promise<T>) {
  const source = await openSource(join(dir, `${name}.sqfs`));
  try {
    return await fn(await openSquashfs(source));
  } finally {
    await source.close();
  }
}

describe("squashfs reader", { skip }, () => {
  let dir = "";
  before(async () => {
    dir = await fixture("make-squashfs-images.sh", "squashfs");
  });

  for (const name of IMAGES) {
    test(`${name}: listing equals unsquashfs -lln (types, modes, uid/gid, sizes, devices, mtimes, symlink targets)`, async () => {
      const expected = readFileSync(join(dir, `${name}.sqfs.lln`), "utf8").trimEnd().split("\n").map(normaliseLln);
      const actual = await withImage(dir, name, llnLines);
      assert.equal(actual.length, expected.length);
      assert.deepEqual(actual, expected);
    });

    test(`${name}: every file's bytes equal what unsquashfs extracts (sha256)`, async () => {
      const expected = readFileSync(join(dir, `${name}.sqfs.sha256`), "utf8").trimEnd().split("\n");
      const actual = await withImage(dir, name, sha256Lines);
      assert.deepEqual(actual, expected);
    });
  }

  test("hard links share an id and nlink, as unsquashfs -lln's inode numbers say", async () => {
    await withImage(dir, "gzip", async (fs) => {
      const root = await fs.root();
      const get = async (...path: string[]) => {
        let node: SquashfsNode | undefined = root;
        for (const part of path) node = node && (await fs.lookup(node, part));
        assert.ok(node, path.join("/"));
        return node;
      };
      const [a, b] = [await get("hl-a"), await get("hl-b")];
      assert.equal(a.stat.id, b.stat.id);
      assert.equal(a.stat.nlink, 2);
      const three = [await get("links", "t1"), await get("links", "t2"), await get("t3")];
      assert.ok(three.every((n) => n.stat.id === three[0]?.stat.id && n.stat.nlink === 3));
      assert.notEqual(a.stat.id, three[0]?.stat.id);
    });
  });

  test("sparse blocks are holes in dataRanges and read as zeros", async () => {
    for (const name of ["gzip", "zstd", "lz4"]) {
      await withImage(dir, name, async (fs) => {
        const root = await fs.root();
        const sparse = (await fs.lookup(root, "sparse.bin")) as SquashfsNode;
        const ranges = await fs.dataRanges(sparse);
        const covered = ranges.reduce((n, [, len]) => n + len, 0);
        const bs = fs.superblock.blockSize;
        assert.ok(covered <= 3 * bs, `${name}: ${covered} bytes of data in ${JSON.stringify(ranges)}`);
        assert.ok(ranges.some(([s, l]) => s <= 3145728 && s + l > 3145728), `${name}: middle data in a range`);
        assert.ok(ranges.some(([s, l]) => s + l === 8388608), `${name}: the end is data`);
        assert.equal((await fs.read(sparse, 3145728, 18)).toString(), "data in the middle");
        assert.ok((await fs.read(sparse, 0, 65536)).equals(Buffer.alloc(65536)));
        const zeros = (await fs.lookup(root, "zeros.bin")) as SquashfsNode;
        assert.deepEqual(await fs.dataRanges(zeros), []);
      });
    }
  });

  test("reads at odd offsets across block and fragment boundaries equal the whole-file bytes", async () => {
    await withImage(dir, "zstd", async (fs) => {
      const tail = (await fs.lookup(await fs.root(), "tail.bin")) as SquashfsNode; // 200000 bytes, 1 MiB blocks: all in a fragment
      const whole = await fs.read(tail, 0, tail.stat.size);
      assert.ok((await fs.read(tail, 131071, 2)).equals(whole.subarray(131071, 131073)));
      await assert.rejects(fs.read(tail, 199999, 2), (err) => err instanceof CorruptImageError && /outside the file/.test(err.message));
    });
    await withImage(dir, "lz4", async (fs) => {
      const big = (await fs.lookup(await fs.root(), "big.bin")) as SquashfsNode; // 4 KiB blocks
      const whole = await fs.read(big, 0, big.stat.size);
      for (const [at, len] of [[4095, 2], [1, 10000], [big.stat.size - 5000, 5000], [0, 0]] as const) {
        assert.ok((await fs.read(big, at, len)).equals(whole.subarray(at, at + len)), `${at}+${len}`);
      }
    });
  });
  test('a crafted entry named ".." is listed as stored, not dropped; extract renames it "_.." with a warning', async () => {
    const image = readFileSync(join(dir, "nocomp.sqfs"));
    const sb = decodeSuperblock(image);
    // The root's entry "t3": size field 1 (name length - 1), then the name.
    const at = image.indexOf(Buffer.from([0x01, 0x00, 0x74, 0x33]), sb.directoryTableStart);
    assert.ok(at > 0 && at < sb.fragmentTableStart, "found t3's directory entry");
    const rootNames = async () => {
      const fs = await openSquashfs(new MemorySource(image));
      return (await listAll(fs, await fs.root())).map((e) => e.name);
    };
    const before = await rootNames();
    image.write("..", at + 2, "latin1");
    const names = await rootNames();
    assert.deepEqual(names, before.map((n) => (n === "t3" ? ".." : n)));
    const tmp = tempDir();
    writeFileSync(join(tmp, "dots.sqfs"), image);
    const r = await platter(["extract", join(tmp, "dots.sqfs"), "-o", join(tmp, "out"), "-q"]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, /^platter: warning: \/\.\.: unsafe name, extracted as "_\.\."$/m);
    assert.equal(readFileSync(join(tmp, "out", "_.."), "utf8"), "three names\n");
  });
});

describe("squashfs compressed blocks are bounded by the block size", { skip: needs("mksquashfs") }, () => {
  test("a zstd data block declaring a 1.9 GiB window is corrupt: one line, exit 1, a few MiB (mksquashfs image patched)", async () => {
    const work = tempDir();
    const payload = Buffer.alloc(4096);
    for (let i = 0; i < payload.length; i++) payload[i] = (i * 7919) % 251;
    await sh(`mkdir ${work}/src`);
    writeFileSync(join(work, "src", "f"), payload);
    const img = join(work, "bomb.sqfs");
    // One 4 KiB block stored uncompressed (-noD), inodes uncompressed (-noI): both easy to find and patch.
    await sh(`mksquashfs ${work}/src ${img} -quiet -no-progress -comp zstd -b 4K -noI -noD -no-fragments >/dev/null`);
    const image = readFileSync(img);
    const dataAt = image.indexOf(payload);
    const wordAt = image.indexOf(Buffer.from([0x00, 0x10, 0x00, 0x01]), dataAt + payload.length); // 4096, stored uncompressed
    assert.ok(dataAt > 0 && wordAt > 0);
    image.writeUInt32LE(4096, wordAt); // now "compressed"
    // A zstd frame with no content size and a 2^30 + 7/8 * 2^30 window, then RLE blocks that each make 128 KiB.
    Buffer.from([0x28, 0xb5, 0x2f, 0xfd, 0x00, (20 << 3) | 7]).copy(image, dataAt);
    for (let at = 6; at + 4 <= 4096; at += 4) {
      const word = (at + 8 > 4096 ? 1 : 0) | (1 << 1) | (131072 << 3); // last?, RLE, 128 KiB
      Buffer.from([word & 0xff, (word >> 8) & 0xff, word >> 16, 0x41]).copy(image, dataAt + at);
    }
    writeFileSync(img, image);
    const r = await nodeWithPeak([CLI, "cat", img, "/f"]);
    assert.equal(r.code, 1);
    assert.equal(r.stderr, "platter: corrupt zstd block: its window of 2013265920 bytes is larger than 4096\n");
    assert.ok(r.peakMiB < 150, `peak RSS ${r.peakMiB.toFixed(0)} MiB`);
  });
});

describe("squashfs names and devices, as an unsquashfs'd copy has them", { skip: needs("root", "mksquashfs", "unsquashfs") }, () => {
  test("names that are not UTF-8 stay distinct byte for byte, symlink targets too; a large device number decodes", async () => {
    const work = tempDir();
    const src = join(work, "src");
    await sh(`mkdir ${src}`);
    writeFileSync(Buffer.from(`${src}/bad\xff\xfe.txt`, "latin1"), "fe");
    writeFileSync(Buffer.from(`${src}/bad\xff\xfd.txt`, "latin1"), "fd");
    await sh(`cd ${src} && ln -s "$(printf 'bad\\377\\376.txt')" link && mknod big c 300 70000 && mknod null c 1 3 && mknod loop b 7 0`);
    const img = join(work, "names.sqfs");
    await sh(`mksquashfs ${src} ${img} -quiet -no-progress >/dev/null && unsquashfs -q -d ${work}/copy ${img} >/dev/null`);
    const copy = join(work, "copy");
    const source = await openSource(img);
    try {
      const fs = await openSquashfs(source);
      const root = await fs.root();
      const entries = await listAll(fs, root);
      const theirs = readdirSync(copy, { encoding: "buffer" }).map((n) => n.toString("hex")).sort();
      assert.deepEqual(entries.map((e) => nameBytes(e.name).toString("hex")).sort(), theirs);
      for (const e of entries.filter((e) => e.name.startsWith("bad"))) {
        const expected = readFileSync(Buffer.concat([Buffer.from(`${copy}/`), nameBytes(e.name)]));
        assert.ok((await fs.read((await fs.lookup(root, e.name)) as SquashfsNode, 0, 2)).equals(expected));
      }
      const link = (await fs.lookup(root, "link")) as SquashfsNode;
      assert.ok(nameBytes(await fs.readlink(link)).equals(readlinkSync(join(copy, "link"), { encoding: "buffer" })));
      for (const name of ["big", "null", "loop"]) {
        const node = (await fs.lookup(root, name)) as SquashfsNode;
        const [major, minor] = (await sh(`stat -c '%t %T' ${join(copy, name)}`)).trim().split(" ").map((h) => Number.parseInt(h, 16));
        assert.deepEqual(node.stat.rdev, [major, minor], name);
        assert.equal(node.stat.type, name === "loop" ? "block" : "char");
      }
    } finally {
      await source.close();
    }
  });
});
