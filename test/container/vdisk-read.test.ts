/**
 * Reading the virtual disks qemu-img makes — VHD (vpc), VHDX, VMDK, VDI —
 * through openImage: the same bytes `qemu-img convert -O raw` gives, found by
 * magic (a fixed VHD by its footer, which `qemu-img info` misses), with the
 * partition table and filesystems inside readable, and through the CLI.
 */
import assert from "node:assert/strict";
import { closeSync, openSync, readFileSync, readSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { before, describe, test } from "node:test";
import { decodeDynamicHeader, encodeDynamicHeader } from "../../src/container/vhd/dynamic-header.js";
import { decodeVhdFooter, encodeVhdFooter, FOOTER_BYTES } from "../../src/container/vhd/footer.js";
import { openFilesystem } from "../../src/fs/open.js";
import { listAll } from "../../src/fs/walk.js";
import { openPartition } from "../../src/image/partition-choice.js";
import { readPartitionTable } from "../../src/partition/index.js";
import { needs } from "../helpers/env.js";
import { platter, run } from "../helpers/run.js";
import { tempDir } from "../helpers/tmp.js";
import { sha256Of } from "./qcow2-helpers.js";
import { openVdisk, vdiskFixtures } from "./vdisk-helpers.js";

const IMAGES: Array<[string, string]> = [
  ["vpc/dynamic.vhd", "vhd"],
  ["vpc/fixed.vhd", "vhd"],
  ["vpc/force.vhd", "vhd"],
  ["vpc/force-fixed.vhd", "vhd"],
  ["vhdx/dynamic.vhdx", "vhdx"],
  ["vhdx/fixed.vhdx", "vhdx"],
  ["vhdx/block1m.vhdx", "vhdx"],
  ["vmdk/sparse.vmdk", "vmdk"],
  ["vmdk/stream.vmdk", "vmdk"],
  ["vmdk/flat.vmdk", "vmdk"],
  ["vmdk/zeroed.vmdk", "vmdk"],
  ["vmdk/chain/top.vmdk", "vmdk"],
  ["vdi/dynamic.vdi", "vdi"],
  ["vdi/static.vdi", "vdi"],
];

const MiB = 1 << 20;

describe("virtual disks qemu-img made", { skip: needs("qemu-img", "qemu-io", "gcc") }, () => {
  let dir = "";
  before(async () => {
    ({ dir } = await vdiskFixtures());
  });

  test("each reads as the bytes qemu-img convert -O raw gives, at the size qemu-img info reports", async () => {
    for (const [name, format] of IMAGES) {
      const image = await openVdisk(join(dir, name));
      try {
        assert.deepEqual(image.layers.map((l) => l.format), [format], name);
        const info = JSON.parse(readFileSync(join(dir, `${name}.info`), "utf8"));
        assert.equal(image.source.size, info["virtual-size"], `${name}: virtual size`);
        assert.equal(await sha256Of(image.source), readFileSync(join(dir, `${name}.sha256`), "utf8").trim(), name);
      } finally {
        await image.close();
      }
    }
  });

  test("describe() says what qemu-img info says: subformat, cluster size, parent", async () => {
    const expect: Record<string, Record<string, unknown>> = {
      "vpc/fixed.vhd": { subformat: "fixed" },
      "vpc/force.vhd": { subformat: "dynamic", creatorApp: "qem2", blockSize: 2 * MiB },
      "vhdx/block1m.vhdx": { subformat: "dynamic", clusterSize: MiB, logReplayNeeded: false },
      "vmdk/stream.vmdk": { subformat: "streamOptimized", clusterSize: 65536 },
      "vmdk/flat.vmdk": { subformat: "monolithicFlat" },
      "vmdk/chain/top.vmdk": { subformat: "monolithicSparse", parentFile: "../base.vmdk" },
      "vdi/static.vdi": { subformat: "static", clusterSize: MiB },
    };
    for (const [name, fields] of Object.entries(expect)) {
      const image = await openVdisk(join(dir, name));
      try {
        const described = image.layers[0].describe();
        for (const [key, value] of Object.entries(fields)) assert.deepEqual(described[key], value, `${name}: ${key}`);
      } finally {
        await image.close();
      }
    }
    // qemu-img info calls a fixed VHD raw unless told -f vpc; platter finds it by its footer.
    const qemu = JSON.parse((await run("qemu-img", ["info", "--output=json", join(dir, "vpc/fixed.vhd")])).stdout);
    assert.equal(qemu.format, "raw");
  });

  test("the MBR and the filesystems inside read from every format", async () => {
    for (const name of ["vpc/dynamic.vhd", "vhdx/dynamic.vhdx", "vmdk/stream.vmdk", "vdi/dynamic.vdi"]) {
      const image = await openVdisk(join(dir, name));
      try {
        const table = await readPartitionTable(image.source);
        assert.equal(table.scheme, "mbr", name);
        assert.deepEqual(table.partitions.map((p) => p.number), [1, 2, 5, 6], name);
        const fs = await openFilesystem(openPartition(image.source, table, 1));
        const names = (await listAll(fs, await fs.root())).map((e) => e.name).sort();
        assert.deepEqual(names, ["etc", "home", "lost+found"], name);
      } finally {
        await image.close();
      }
    }
  });

  test("dataRanges: unallocated blocks are left out, and everything outside them reads as zeros", async () => {
    for (const name of ["vpc/dynamic.vhd", "vhdx/block1m.vhdx", "vmdk/sparse.vmdk", "vdi/dynamic.vdi"]) {
      const image = await openVdisk(join(dir, name));
      try {
        const { source } = image;
        assert.ok(source.dataRanges, name);
        const ranges = await source.dataRanges(0, source.size);
        const covered = ranges.reduce((n, [, length]) => n + length, 0);
        assert.ok(covered < source.size / 2, `${name}: ${covered} of ${source.size} bytes said to hold data`);
        let pos = 0;
        for (const [start, length] of [...ranges, [source.size, 0] as [number, number]]) {
          for (let at = pos; at < start; at += MiB) {
            const gap = await source.read(at, Math.min(MiB, start - at));
            assert.ok(gap.every((b) => b === 0), `${name}: nonzero byte between ${at} and ${start}`);
          }
          pos = start + length;
        }
      } finally {
        await image.close();
      }
    }
  });

  test("a VHDX with a pending log reads as qemu reads it once replayed, with a warning, the file untouched", async () => {
    const path = join(dir, "vhdx/dirty.vhdx");
    const before = readFileSync(path);
    const warnings: string[] = [];
    const image = await openVdisk(path, warnings);
    try {
      assert.equal(await sha256Of(image.source), readFileSync(`${path}.sha256`, "utf8").trim());
      assert.equal(image.layers[0].describe().logReplayNeeded, true);
    } finally {
      await image.close();
    }
    assert.equal(warnings.length, 1);
    assert.match(warnings[0], /the VHDX log holds 1 change\(s\) its writer did not finish applying; read with them replayed in memory/);
    assert.ok(readFileSync(path).equals(before), "never written back");
    // qemu itself will not open it read-only.
    const qemu = await run("qemu-img", ["info", path]);
    assert.notEqual(qemu.code, 0);
  });

  test("a differencing VHD reads its parent where the bitmap says so, found by its W2ru locator", async () => {
    const work = tempDir();
    const base = join(work, "base.vhd");
    const child = join(work, "child.vhd");
    writeFileSync(base, readFileSync(join(dir, "vpc/diff/base.vhd")));
    writeFileSync(child, makeDifferencing(readFileSync(join(dir, "vpc/diff/child.vhd")), readFileSync(base)));
    const image = await openVdisk(child);
    try {
      assert.equal(image.layers[0].describe().subformat, "differencing");
      assert.equal(image.layers[0].describe().parentFile, "base.vhd");
      assert.equal(await sha256Of(image.source), readFileSync(join(dir, "vpc/diff/expected.sha256"), "utf8").trim());
    } finally {
      await image.close();
    }
  });

  test("split VMDK extents (sparse and flat) and a VHDX past its first chunk read as qemu reads them", async () => {
    const ranges = [
      [0, 64 * MiB],
      [2048 * MiB - MiB, 5 * MiB],
      [4096 * MiB, 6 * MiB],
      [4096 * MiB + 60 * MiB, 4 * MiB],
    ];
    for (const name of ["split.vmdk", "splitflat.vmdk", "big.vhdx"]) {
      const image = await openVdisk(join(dir, "big", name));
      const raw = openSync(join(dir, "big", `${name}.raw`), "r");
      try {
        assert.equal(image.source.size, 4160 * MiB, name);
        for (const [start, length] of ranges) {
          for (let at = start; at < start + length; at += MiB) {
            const want = Buffer.alloc(MiB);
            readSync(raw, want, 0, MiB, at);
            assert.ok((await image.source.read(at, MiB)).equals(want), `${name} at ${at}`);
          }
        }
      } finally {
        closeSync(raw);
        await image.close();
      }
    }
  });
});

describe("platter parts, ls, cat, info on qemu-img's images", { skip: needs("qemu-img", "qemu-io", "gcc") }, () => {
  let dir = "";
  let disk = "";
  before(async () => {
    ({ dir, disk } = await vdiskFixtures());
  });

  test("the same partition table, tree and file as from the raw disk", async () => {
    const rawParts = await platter(["parts", "--json", disk]);
    const rawLs = await platter(["ls", "-R", disk, "--part", "1"]);
    const rawCat = await platter(["cat", disk, "/home/user/hello.txt", "--part", "1"]);
    assert.equal(rawCat.code, 0, rawCat.stderr);
    for (const name of ["vpc/fixed.vhd", "vpc/dynamic.vhd", "vhdx/dynamic.vhdx", "vmdk/stream.vmdk", "vmdk/flat.vmdk", "vdi/dynamic.vdi"]) {
      const path = join(dir, name);
      const parts = await platter(["parts", "--json", path]);
      assert.equal(parts.code, 0, parts.stderr);
      assert.deepEqual(JSON.parse(parts.stdout).partitions, JSON.parse(rawParts.stdout).partitions, name);
      const ls = await platter(["ls", "-R", path, "--part", "1"]);
      assert.equal(ls.stdout, rawLs.stdout, name);
      const cat = await platter(["cat", path, "/home/user/hello.txt", "--part", "1"]);
      assert.equal(cat.stdout, rawCat.stdout, name);
    }
  });

  test("info names the format and its subformat", async () => {
    for (const [name, format, subformat] of [
      ["vpc/fixed.vhd", "vhd", "fixed"],
      ["vhdx/fixed.vhdx", "vhdx", "fixed"],
      ["vmdk/sparse.vmdk", "vmdk", "monolithicSparse"],
      ["vdi/static.vdi", "vdi", "static"],
    ]) {
      const r = await platter(["info", "--json", join(dir, name)]);
      assert.equal(r.code, 0, r.stderr);
      const info = JSON.parse(r.stdout);
      assert.equal(info.format, format, name);
      assert.equal(info.layers[0].subformat, subformat, name);
      assert.equal(info.partitionTable, "mbr", name);
    }
  });
});

/**
 * qemu cannot make a differencing VHD, so turn the empty dynamic VHD qemu-io
 * wrote into (make-vdisk-images.sh's DIFF_WRITES) into one: type 4, the
 * base's unique id, a W2ru locator ".\base.vhd" after the last block, and
 * sector bitmaps with only the written sectors set — less the second half of
 * the first write, which must then come from the parent (EXPECTED_WRITES).
 */
function makeDifferencing(child: Buffer, base: Buffer): Buffer {
  const footer = decodeVhdFooter(child.subarray(child.length - FOOTER_BYTES), "child footer");
  const baseFooter = decodeVhdFooter(base.subarray(base.length - FOOTER_BYTES), "base footer");
  const headerAt = footer.dataOffset ?? 0;
  const header = decodeDynamicHeader(child.subarray(headerAt, headerAt + 1024), "child header");
  const body = Buffer.from(child.subarray(0, child.length - FOOTER_BYTES));
  const blockSectors = header.blockSize / 512;
  const written: Array<[number, number]> = [
    [(2 * MiB) / 512, 64], // 32 KiB of the 64 KiB written
    [(40 * MiB) / 512, 8],
    [(63 * MiB) / 512, 1],
  ];
  for (const [first, count] of written) {
    const block = Math.floor(first / blockSectors);
    const bitmapAt = body.readUInt32BE(header.tableOffset + block * 4) * 512;
    body.fill(0, bitmapAt, bitmapAt + 512);
    for (let s = first % blockSectors; s < (first % blockSectors) + count; s++) body[bitmapAt + (s >> 3)] |= 0x80 >> (s & 7);
  }
  const locator = Buffer.alloc(512);
  const path = Buffer.from(".\\base.vhd", "utf16le");
  path.copy(locator);
  const differencing = encodeVhdFooter({ ...footer, diskType: "differencing" });
  const newHeader = encodeDynamicHeader({
    ...header,
    parentUniqueId: baseFooter.uniqueId,
    parentTimestamp: baseFooter.timestamp,
    parentName: "base.vhd",
    parentLocators: [{ platformCode: "W2ru", dataSpace: 512, dataLength: path.length, dataOffset: body.length }],
  });
  differencing.copy(body, 0);
  newHeader.copy(body, headerAt);
  return Buffer.concat([body, locator, differencing]);
}
