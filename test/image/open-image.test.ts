/**
 * The opener every command reads through: standard input refused where
 * random access is needed, truncated partitions read as far as they go,
 * probes that hit a bad sector, containers stacked by magic, backing chains
 * that loop.
 */
import assert from "node:assert/strict";
import { copyFileSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, describe, test } from "node:test";
import type { ContainerFormat, ContainerSource } from "../../src/container/format.js";
import { CONTAINER_FORMATS } from "../../src/container/registry.js";
import { CorruptImageError } from "../../src/errors.js";
import { guardFileSystem } from "../../src/fs/guard.js";
import type { FileSystem, FsNode } from "../../src/fs/types.js";
import { openImage } from "../../src/image/open-image.js";
import { needs } from "../helpers/env.js";
import { FIXTURES } from "../helpers/fixtures.js";
import { platter, run, sh } from "../helpers/run.js";
import { tempDir } from "../helpers/tmp.js";

const EXAMPLE = "examples/disk.img";
/** examples/disk.img: partition 2 (ext4, 2 MiB) starts here. */
const P2 = 2 << 20;

describe("standard input where random access is needed", () => {
  for (const args of [["ls", "-"], ["cat", "-", "/x"], ["extract", "-", "-o", "/tmp/never"], ["parts", "-"], ["info", "-"], ["mount", "-", "/mnt"]]) {
    test(`platter ${args.join(" ")}: one line saying why, exit 2`, async () => {
      const r = await platter(args, { input: "not an image" });
      assert.equal(r.code, 2, r.stderr);
      assert.match(r.stderr, /^platter: -: standard input is a stream, and .* needs random access \(a file or block device\); save it to a file first/);
      assert.equal(r.stderr.split("\n").length, 2, "one line");
    });
  }
});

describe("an image cut short inside a partition (as debugfs reads one)", { skip: needs("debugfs") }, () => {
  const dir = tempDir();
  const cut = join(dir, "cut.img");
  const slice = join(dir, "p2-cut.img");
  // Partition 2's inode table, directories and hello.txt lie in its first 64 KiB; numbers.txt runs past it.
  const keep = 64 << 10;

  test("ls -R reads what is there, with one warning naming the cut", async () => {
    await sh(`head -c ${P2 + keep} ${EXAMPLE} > ${cut}`);
    const r = await platter(["ls", "-R", cut, "--part", "2"]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^\/home\/alice\/numbers\.txt$/m);
    assert.match(r.stderr, /^platter: warning: partition 2 of .* runs past the end of the image .*the image is truncated; reading the 64 KiB that are there$/m);
  });

  test("a file inside the part that is there reads as debugfs reads it from the same bytes", async () => {
    await sh(`tail -c +${P2 + 1} ${cut} > ${slice}`);
    const ours = await platter(["cat", cut, "/home/alice/hello.txt", "--part", "2"]);
    assert.equal(ours.code, 0, ours.stderr);
    const theirs = await run("debugfs", ["-R", "cat /home/alice/hello.txt", slice]);
    assert.equal(ours.stdout, theirs.stdout);
  });

  test("a file whose blocks are missing fails in one line naming the missing bytes, exit 1", async () => {
    const r = await platter(["cat", cut, "/home/alice/numbers.txt", "--part", "2"]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /^platter: partition 2 of .*: bytes \d+-\d+ are missing: the image is truncated \(it holds the first 65536 of 2097152 bytes\)$/m);
  });
});

describe("probing a failing disk", { skip: needs("root", "fuse", "loop", "losetup", "gcc", "pkg-config") }, () => {
  const devices: string[] = [];
  after(async () => {
    for (const dev of devices) await run("bash", [join(FIXTURES, "badsector-device.sh"), "down", dev]);
  });

  test("parts: a bad sector in partition 2's superblock makes it 'unknown' with a warning; partition 1 is still probed, exit 0", async () => {
    const dir = tempDir();
    const backing = join(dir, "disk.img");
    copyFileSync(EXAMPLE, backing);
    // The ext4 superblock is 1 KiB into the partition: sectors 4098-4099 of the disk.
    const first = P2 / 512 + 2;
    const dev = (await sh(`${join(FIXTURES, "badsector-device.sh")} up ${backing} ${first}-${first + 1}`)).trim();
    devices.push(dev);
    const r = await platter(["parts", dev, "--json"]);
    assert.equal(r.code, 0, r.stderr);
    const report = JSON.parse(r.stdout);
    assert.deepEqual(
      report.partitions.map((p: { number: number; filesystem: string | null }) => [p.number, p.filesystem]),
      [[1, "vfat"], [2, null]],
    );
    assert.ok(
      report.warnings.some((w: string) => /partition 2 of .*: filesystem unknown \(.*input\/output error\)/.test(w)),
      report.warnings.join("\n"),
    );
    const ls = await platter(["ls", dev]);
    assert.equal(ls.code, 0, ls.stderr);
    assert.match(ls.stderr, /filesystem unknown/);
  });
});

test("info names the partition table and how many partitions it lists", async () => {
  const r = await platter(["info", EXAMPLE]);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /^partition table: +MBR \(dos\), 2 partitions/m);
  const json = JSON.parse((await platter(["info", EXAMPLE, "--json"])).stdout);
  assert.deepEqual([json.partitionTable, json.partitions, json.layers, json.seekable], ["mbr", 2, [], true]);
});

describe("container layers", () => {
  /** A test container: "XOR!" then the payload with every byte xor 0x5a; it may name a related file after a NUL. */
  const MAGIC = Buffer.from("XOR!");
  const xorFormat: ContainerFormat = {
    name: "gzip", // any ContainerName: the test only needs a name
    detect: (head) => head.subarray(0, 4).equals(MAGIC),
    async open(below, context) {
      const header = await below.read(0, 64);
      const related = header.subarray(4, header.indexOf(0, 4)).toString();
      if (related) await (await context.openRelated(related)).close();
      const size = below.size - 64;
      const layer: ContainerSource = {
        name: `xor over ${below.name}`,
        size,
        sectorSize: 512,
        format: "gzip",
        seekable: true,
        describe: () => ({ related: related || null }),
        async read(offset, length, into) {
          const bytes = await below.read(64 + offset, length, into);
          for (let i = 0; i < bytes.length; i++) bytes[i] ^= 0x5a;
          return bytes;
        },
        async close() {},
      };
      return layer;
    },
  };
  const withFormat = async (body: () => Promise<void>) => {
    CONTAINER_FORMATS.unshift(xorFormat);
    try {
      await body();
    } finally {
      CONTAINER_FORMATS.splice(CONTAINER_FORMATS.indexOf(xorFormat), 1);
    }
  };
  const wrap = (payload: Buffer, related = "") => {
    const header = Buffer.alloc(64);
    MAGIC.copy(header);
    header.write(related, 4);
    return Buffer.concat([header, Buffer.from(payload.map((b) => b ^ 0x5a))]);
  };
  const dir = tempDir();

  test("found by magic (not by name) and stacked: two layers decode to the raw disk", async () => {
    const raw = readFileSync(EXAMPLE);
    const path = join(dir, "disk.raw"); // a name that says nothing
    writeFileSync(path, wrap(wrap(raw)));
    await withFormat(async () => {
      const image = await openImage(path);
      try {
        assert.deepEqual(image.layers.map((l) => l.format), ["gzip", "gzip"]);
        assert.equal(image.source.size, raw.length);
        assert.ok((await image.source.read(P2, 4096)).equals(raw.subarray(P2, P2 + 4096)));
      } finally {
        await image.close();
      }
    });
  });

  test("an image that names itself as its related file is refused, naming the loop", async () => {
    const path = join(dir, "self.img");
    writeFileSync(path, wrap(Buffer.alloc(4096), "self.img"));
    await withFormat(async () => {
      await assert.rejects(openImage(path), (err: unknown) => err instanceof CorruptImageError && /comes back to this image/.test(err.message));
    });
  });
});

test("the reader boundary: anything a decoder throws that is not platter's own becomes one CorruptImageError", async () => {
  const node: FsNode = { stat: { type: "dir", size: 0, mode: 0o755, mtime: 0, uid: 0, gid: 0, nlink: 1, id: 1 } };
  const broken: FileSystem = {
    type: "ext4",
    label: null,
    root: async () => node,
    async *list() {
      yield { name: "a", node };
      throw new RangeError('The value of "offset" is out of range');
    },
    lookup: async () => {
      throw new TypeError("Cannot read properties of undefined (reading 'inode')");
    },
    readlink: async () => "",
    read: async () => Buffer.alloc(0),
    close: async () => {},
  };
  const fs = guardFileSystem(broken, "partition 2 of disk.img");
  await assert.rejects(fs.lookup(node, "x"), (err: unknown) => err instanceof CorruptImageError && /^partition 2 of disk\.img: ext4 directory lookup: a damaged structure \(Cannot read/.test(err.message));
  const names: string[] = [];
  await assert.rejects(
    (async () => {
      for await (const e of fs.list(node)) names.push(e.name);
    })(),
    (err: unknown) => err instanceof CorruptImageError && /out of range/.test(err.message),
  );
  assert.deepEqual(names, ["a"]);
});

