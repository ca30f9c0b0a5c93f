/**
 * Differencing VHDX: a child whose absent blocks are its parent's, whose
 * partially present blocks take each sector from the child or the parent
 * as its sector bitmap says. qemu cannot make one ("Differencing files not
 * yet supported"), so the test makes one the way Hyper-V lays it out, from
 * an empty VHDX qemu-img created and qemu-io wrote into: the HasParent file
 * parameter, a parent locator metadata item (parent_linkage = the parent's
 * data write GUID, relative_path, absolute_win32_path), BAT states set
 * block by block, and a sector bitmap block for the chunk. The parent is
 * the VHDX qemu-img converted from the MBR fixture disk; what the child
 * must read as is computed here from that raw disk and qemu-io's patterns.
 */
import assert from "node:assert/strict";
import { copyFileSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { before, describe, test } from "node:test";
import { BatLayout, decodeBatEntry, encodeBatEntry, MiB, PayloadState } from "../../src/container/vhdx/bat.js";
import { METADATA_ITEM, REGION } from "../../src/container/vhdx/guids.js";
import { decodeVhdxHeader, HEADER_OFFSETS } from "../../src/container/vhdx/header.js";
import { decodeMetadataTable, encodeMetadataTable, encodeParentLocator, METADATA_TABLE_BYTES } from "../../src/container/vhdx/metadata.js";
import { decodeRegionTable, REGION_TABLE_OFFSETS } from "../../src/container/vhdx/region-table.js";
import { needs } from "../helpers/env.js";
import { platter, run } from "../helpers/run.js";
import { tempDir } from "../helpers/tmp.js";
import { openVdisk, vdiskFixtures } from "./vdisk-helpers.js";

const SIZE = 64 * MiB;
/** Blocks of the child (1 MiB each) and what each is; every other block is absent: the parent's. */
const FULL = 9; // qemu-io wrote all of it: the child's bytes
const PARTIAL = 18; // qemu-io wrote 64 KiB at 128 KiB into it: those sectors the child's, the rest the parent's
const ZERO = 54; // zeros, whatever the parent holds there
const PARTIAL_FROM = 128 * 1024;
const PARTIAL_BYTES = 64 * 1024;

/** The parent's bytes with the child's on top, from the raw disk and qemu-io's patterns alone. */
function expectedChild(disk: Buffer): Buffer {
  const want = Buffer.from(disk);
  want.fill(0x11, FULL * MiB, (FULL + 1) * MiB);
  want.fill(0x22, PARTIAL * MiB + PARTIAL_FROM, PARTIAL * MiB + PARTIAL_FROM + PARTIAL_BYTES);
  want.fill(0, ZERO * MiB, (ZERO + 1) * MiB);
  return want;
}

/** Turn qemu's dynamic VHDX `child` into a differencing one whose parent is `parent` (see the top of the file). */
function makeDifferencing(child: Buffer, parent: Buffer, relativePath: string): Buffer {
  const regions = decodeRegionTable(child.subarray(REGION_TABLE_OFFSETS[0]));
  const bat = regions.find((r) => r.guid === REGION.bat);
  const md = regions.find((r) => r.guid === REGION.metadata);
  assert.ok(bat && md);
  // The metadata: HasParent (bit 1 of the file parameters' flags), and a parent locator item after qemu's items.
  const items = decodeMetadataTable(child.subarray(md.fileOffset, md.fileOffset + METADATA_TABLE_BYTES), md.length, "child metadata");
  const params = items.find((i) => i.itemId === METADATA_ITEM.fileParameters);
  assert.ok(params);
  child.writeUInt32LE(child.readUInt32LE(md.fileOffset + params.offset + 4) | 2, md.fileOffset + params.offset + 4);
  const parentHeaders = HEADER_OFFSETS.map((at) => decodeVhdxHeader(parent.subarray(at)));
  const current = parentHeaders[0].sequenceNumber > parentHeaders[1].sequenceNumber ? parentHeaders[0] : parentHeaders[1];
  const locator = encodeParentLocator(
    new Map([
      ["parent_linkage", `{${current.dataWriteGuid}}`],
      ["relative_path", relativePath],
      ["absolute_win32_path", `C:\\VMs\\${relativePath.split("\\").pop()}`],
    ]),
  );
  const locatorAt = 2 * METADATA_TABLE_BYTES;
  locator.copy(child, md.fileOffset + locatorAt);
  items.push({ itemId: METADATA_ITEM.parentLocator, offset: locatorAt, length: locator.length, isUser: false, isVirtualDisk: false, isRequired: true });
  encodeMetadataTable(items).copy(child, md.fileOffset);

  // The BAT as a differencing disk's: payload states, and the chunk's sector bitmap block at the end of the file.
  const layout = new BatLayout(SIZE, MiB, 512, true);
  const entryAt = (index: number) => bat.fileOffset + index * 8;
  const bitmapAt = child.length;
  const bitmap = Buffer.alloc(MiB);
  for (let block = 0; block < layout.payloadBlocks; block++) {
    const at = entryAt(layout.payloadEntry(block));
    const { offset } = decodeBatEntry(child, at);
    const state = block === FULL ? PayloadState.fullyPresent : block === PARTIAL ? PayloadState.partiallyPresent : block === ZERO ? PayloadState.zero : PayloadState.notPresent;
    if (state === PayloadState.fullyPresent || state === PayloadState.partiallyPresent) assert.notEqual(offset, 0, `qemu-io allocated block ${block}`);
    encodeBatEntry({ state, offset: state === PayloadState.notPresent || state === PayloadState.zero ? 0 : offset }, child, at);
  }
  // One bit per 512-byte sector, lowest bit first: the sectors qemu-io wrote in the partial block.
  const bits = PARTIAL * layout.bitmapBytesPerBlock * 8;
  for (let s = PARTIAL_FROM / 512; s < (PARTIAL_FROM + PARTIAL_BYTES) / 512; s++) bitmap[(bits + s) >> 3] |= 1 << ((bits + s) & 7);
  encodeBatEntry({ state: 6, offset: bitmapAt }, child, entryAt(layout.bitmapEntry(0)));
  return Buffer.concat([child, bitmap]);
}

describe("differencing VHDX", { skip: needs("qemu-img", "qemu-io", "gcc") }, () => {
  const work = tempDir();
  let disk: Buffer;
  let child = "";

  before(async () => {
    const { dir, disk: diskPath } = await vdiskFixtures();
    disk = readFileSync(diskPath);
    copyFileSync(join(dir, "vhdx/block1m.vhdx"), join(work, "base.vhdx"));
    const qemuChild = join(work, "qemu-child.vhdx");
    assert.equal((await run("qemu-img", ["create", "-q", "-f", "vhdx", "-o", "block_size=1M", qemuChild, String(SIZE)])).code, 0);
    const io = await run("qemu-io", [
      "-c",
      `write -P 0x11 ${FULL * MiB} 1M`,
      "-c",
      `write -P 0x22 ${PARTIAL * MiB + PARTIAL_FROM} 64k`,
      "-c",
      `write -P 0x33 ${ZERO * MiB} 4k`,
      qemuChild,
    ]);
    assert.equal(io.code, 0, io.stderr);
    child = join(work, "child.vhdx");
    writeFileSync(child, makeDifferencing(readFileSync(qemuChild), readFileSync(join(work, "base.vhdx")), ".\\base.vhdx"));
  });

  test("reads as the parent with the child's blocks on top: absent blocks the parent's, a partial block sector by sector, a zero block zeros", async () => {
    const warnings: string[] = [];
    const image = await openVdisk(child, warnings);
    try {
      assert.equal(image.source.size, SIZE);
      const described = image.layers[0].describe();
      assert.equal(described.subformat, "differencing");
      assert.equal(described.parentFile, "base.vhdx");
      const want = expectedChild(disk);
      for (let at = 0; at < SIZE; at += MiB) {
        assert.ok((await image.source.read(at, MiB)).equals(want.subarray(at, at + MiB)), `block at ${at}`);
      }
    } finally {
      await image.close();
    }
    assert.deepEqual(warnings, [], "the parent's data write GUID is the recorded parent_linkage");
  });

  test("platter reads the filesystem inside through the chain, info shows the backing chain, check finds it clean", async () => {
    const ls = await platter(["ls", child, "/", "--part", "1"]);
    assert.equal(ls.code, 0, ls.stderr);
    assert.deepEqual(ls.stdout.split("\n").filter(Boolean).sort(), ["etc", "home", "lost+found"]);
    const info = await platter(["info", "--json", child]);
    assert.equal(info.code, 0, info.stderr);
    const parsed = JSON.parse(info.stdout);
    assert.equal(parsed.layers[0].subformat, "differencing");
    assert.deepEqual(
      parsed.backingChain.map((b: { name: string; format: string; virtualSize: number }) => [b.name, b.format, b.virtualSize]),
      [["base.vhdx", "vhdx", SIZE]],
    );
    const check = await platter(["check", child]);
    assert.equal(check.code, 0, check.stdout + check.stderr);
  });

  test("check: a partially present block whose chunk has no sector bitmap is a corruption, the block in doubt", async () => {
    const image = readFileSync(child);
    const bat = decodeRegionTable(image.subarray(REGION_TABLE_OFFSETS[0])).find((r) => r.guid === REGION.bat);
    assert.ok(bat);
    const layout = new BatLayout(SIZE, MiB, 512, true);
    encodeBatEntry({ state: 0, offset: 0 }, image, bat.fileOffset + layout.bitmapEntry(0) * 8);
    const path = join(work, "no-bitmap.vhdx");
    writeFileSync(path, image);
    const r = await platter(["check", "--json", path]);
    assert.equal(r.code, 1);
    const report = JSON.parse(r.stdout);
    assert.equal(report.corruptions, 1);
    assert.match(report.checks[0].problems[0].message, /BAT entry 18 is partially present, but the sector bitmap of its chunk \(BAT entry 4096\) is not/);
    assert.deepEqual(
      report.damaged.map((d: { offset: number; length: number }) => [d.offset, d.length]),
      [[PARTIAL * MiB, MiB]],
    );
  });

  test("a parent not found: one line naming the paths tried, exit 1", async () => {
    const orphanDir = tempDir();
    const orphan = join(orphanDir, "orphan.vhdx");
    copyFileSync(child, orphan);
    const r = await platter(["ls", orphan, "/", "--part", "1"]);
    assert.equal(r.code, 1);
    assert.equal(r.stderr, `platter: ${orphan}: VHDX: cannot find the parent VHDX (tried 'base.vhdx' next to it)\n`);
  });
});
