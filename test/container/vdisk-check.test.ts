/**
 * platter check on VHD, VHDX and VMDK: the images qemu-img made are clean
 * (as `qemu-img check` calls them, where qemu checks the format), and
 * copies damaged on purpose (a table entry past the end of the file, two
 * entries sharing a block, a checksum byte flipped, a log left to replay)
 * exit 1 naming the problem and the partition whose bytes it puts in doubt.
 * Where qemu-img check finds the same damage, the test says so; where it
 * cannot (it has no check for VHD; it does not look for blocks shared in a
 * VHDX or VMDK, nor at a VHDX's second header), the test says that too.
 */
import assert from "node:assert/strict";
import { copyFileSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { before, describe, test } from "node:test";
import { decodeDynamicHeader } from "../../src/container/vhd/dynamic-header.js";
import { decodeVhdFooter, encodeVhdFooter, FOOTER_BYTES } from "../../src/container/vhd/footer.js";
import { vhdFormat } from "../../src/container/vhd/format.js";
import { decodeBatEntry, encodeBatEntry, PayloadState } from "../../src/container/vhdx/bat.js";
import { METADATA_ITEM, REGION } from "../../src/container/vhdx/guids.js";
import { decodeMetadataTable, METADATA_TABLE_BYTES } from "../../src/container/vhdx/metadata.js";
import { HEADER_OFFSETS } from "../../src/container/vhdx/header.js";
import { decodeRegionTable, REGION_TABLE_OFFSETS } from "../../src/container/vhdx/region-table.js";
import { decodeSparseHeader } from "../../src/container/vmdk/sparse-header.js";
import { FileSource } from "../../src/io/file-source.js";
import { needs } from "../helpers/env.js";
import { platter, run } from "../helpers/run.js";
import { tempDir } from "../helpers/tmp.js";
import { vdiskFixtures } from "./vdisk-helpers.js";

const MiB = 1 << 20;
/** The MBR fixture disk: partition 1 (ext4 "root") from 1 MiB to 17 MiB. */
const ROOT = { number: 1, filesystem: "ext4", label: "root" };

interface CheckJson {
  clean: boolean;
  corruptions: number;
  leaks: number;
  checks: Array<{ format: string; problems: Array<{ message: string }> }>;
  damaged: Array<{ offset: number; length: number; partitions: Array<{ number: number; filesystem: string | null; label: string | null }> }>;
}

async function platterCheck(path: string): Promise<{ code: number; report: CheckJson; text: string }> {
  const r = await platter(["check", "--json", path]);
  assert.ok(r.stdout, r.stderr);
  const report = JSON.parse(r.stdout) as CheckJson;
  // Which partitions are hit is checked here; the files they name are checked against debugfs and others in test/cli/check-files.test.ts.
  for (const d of report.damaged) d.partitions = d.partitions.map(({ number, filesystem, label }) => ({ number, filesystem, label }));
  return { code: r.code, report, text: report.checks.flatMap((c) => c.problems.map((p) => p.message)).join("\n") };
}

/** qemu-img check: its exit status (0 clean, 2 corruptions, 1 check failed or the image refused), what it printed, its corruption count. */
async function qemuCheck(path: string, format: string): Promise<{ code: number; output: string; corruptions: number }> {
  const r = await run("qemu-img", ["check", "-f", format, path]);
  const json = await run("qemu-img", ["check", "-f", format, "--output=json", path]);
  const corruptions = json.stdout ? ((JSON.parse(json.stdout) as { corruptions?: number }).corruptions ?? 0) : 0;
  return { code: r.code, output: r.stdout + r.stderr, corruptions };
}

describe("platter check on virtual disks qemu-img made", { skip: needs("qemu-img", "qemu-io", "gcc") }, () => {
  let dir = "";
  const work = tempDir();
  before(async () => {
    ({ dir } = await vdiskFixtures());
  });

  /** A copy of fixture `name` at work/<as>, `edit` applied. */
  function damaged(name: string, as: string, edit: (image: Buffer) => void): string {
    const image = readFileSync(join(dir, name));
    edit(image);
    const path = join(work, as);
    writeFileSync(path, image);
    return path;
  }

  describe("VHD (qemu-img has no check for it)", () => {
    /** Byte offset of BAT entry `index` of a dynamic VHD. */
    const entryAt = (image: Buffer, index: number) => {
      const footer = decodeVhdFooter(image.subarray(image.length - FOOTER_BYTES), "footer");
      const header = decodeDynamicHeader(image.subarray(footer.dataOffset ?? 0, (footer.dataOffset ?? 0) + 1024), "header");
      return header.tableOffset + index * 4;
    };

    test("qemu-img check refuses the format; the images it made, and platter's own, are clean", async () => {
      const qemu = await qemuCheck(join(dir, "vpc/dynamic.vhd"), "vpc");
      assert.match(qemu.output, /This image format does not support checks/);
      const mine = join(work, "platter.vhd");
      assert.equal((await platter(["convert", join(dir, "vpc/dynamic.vhd"), mine])).code, 0);
      for (const path of ["vpc/dynamic.vhd", "vpc/fixed.vhd", "vpc/force.vhd", "vpc/force-fixed.vhd"].map((n) => join(dir, n)).concat(mine)) {
        const { code, report } = await platterCheck(path);
        assert.equal(code, 0, `${path}: ${JSON.stringify(report.checks)}`);
        assert.deepEqual(report.checks.map((c) => c.format), ["vhd"]);
      }
    });

    test("a BAT entry past the end of the file: exit 1, the block's 2 MiB in doubt, in partition 1", async () => {
      // Block 1 (guest 2 MiB to 4 MiB) is allocated in qemu's image, and lies in the ext4 partition.
      const path = damaged("vpc/dynamic.vhd", "past.vhd", (image) => image.writeUInt32BE(0x00ffffff, entryAt(image, 1)));
      const { code, report, text } = await platterCheck(path);
      assert.equal(code, 1);
      assert.match(text, /^ERROR .*past\.vhd: VHD BAT entry 1 points at byte 8589934080, past the end of the file/);
      assert.deepEqual(report.damaged, [{ offset: 2 * MiB, length: 2 * MiB, partitions: [ROOT] }]);
    });

    test("two BAT entries made equal: one corruption, both blocks in doubt", async () => {
      const path = damaged("vpc/dynamic.vhd", "shared.vhd", (image) => image.writeUInt32BE(image.readUInt32BE(entryAt(image, 1)), entryAt(image, 4)));
      const { code, report, text } = await platterCheck(path);
      assert.equal(code, 1);
      assert.equal(report.corruptions, 1);
      assert.match(text, /VHD BAT entry 4 points at byte \d+, inside the block of VHD BAT entry 1/);
      assert.deepEqual(
        report.damaged.map((d) => [d.offset, d.length]),
        [
          [2 * MiB, 2 * MiB],
          [8 * MiB, 2 * MiB],
        ],
      );
      assert.deepEqual(report.damaged[0].partitions, [ROOT]);
    });

    test("a checksum byte flipped in the footer at the end: a problem, the copy at offset 0 stands in; in the dynamic header: a problem", async () => {
      const footer = await platterCheck(damaged("vpc/dynamic.vhd", "footer.vhd", (image) => (image[image.length - FOOTER_BYTES + 64] ^= 0x01)));
      assert.equal(footer.code, 1);
      assert.match(footer.text, /VHD footer at byte \d+: checksum 0x[0-9a-f]{8} should be 0x[0-9a-f]{8} \(its copy at byte 0 stands in\)/);
      assert.deepEqual(footer.report.damaged, []);
      const hash = await platter(["hash", join(work, "footer.vhd"), "--hash", "sha256"]);
      assert.equal(hash.stdout.split(" ")[0], readFileSync(join(dir, "vpc/dynamic.vhd.sha256"), "utf8").trim(), "still read, through the copy");
      const header = await platterCheck(damaged("vpc/dynamic.vhd", "header.vhd", (image) => (image[FOOTER_BYTES + 36] ^= 0x01)));
      assert.equal(header.code, 1);
      assert.match(header.text, /dynamic disk header checksum/);
    });

    test("a fixed VHD whose footer claims more than the file holds: a corruption, the missing bytes in doubt (the CLI, like qemu-img, calls such a file raw)", async () => {
      const path = damaged("vpc/fixed.vhd", "short-fixed.vhd", (image) => {
        const footer = decodeVhdFooter(image.subarray(image.length - FOOTER_BYTES), "footer");
        encodeVhdFooter({ ...footer, currentSize: footer.currentSize + MiB }).copy(image, image.length - FOOTER_BYTES);
      });
      const file = await FileSource.open(path);
      try {
        const report = await vhdFormat.check?.(file);
        assert.equal(report?.corruptions, 1);
        assert.match(report?.problems[0]?.message ?? "", /VHD: fixed disk of \d+ bytes, but the file holds \d+ before its footer/);
        assert.deepEqual(report?.damagedGuestRanges, [[file.size - FOOTER_BYTES, MiB]]);
      } finally {
        await file.close();
      }
    });

    test("hostile: every BAT entry pointing at one block is bounded work, each overlap counted", async () => {
      const path = damaged("vpc/dynamic.vhd", "one-block.vhd", (image) => {
        const first = image.readUInt32BE(entryAt(image, 0));
        for (let i = 0; i < 32; i++) image.writeUInt32BE(first, entryAt(image, i));
      });
      const { code, report } = await platterCheck(path);
      assert.equal(code, 1);
      assert.equal(report.corruptions, 31);
    });
  });

  describe("VHDX", () => {
    /** Byte offset of BAT entry `index`, and the entry. */
    const batEntry = (image: Buffer, index: number) => {
      const bat = decodeRegionTable(image.subarray(REGION_TABLE_OFFSETS[0])).find((r) => r.guid === REGION.bat);
      assert.ok(bat);
      const at = bat.fileOffset + index * 8;
      return { at, ...decodeBatEntry(image, at) };
    };

    test("the images qemu-img made and platter's own: clean, as qemu-img check says", async () => {
      const mine = join(work, "platter.vhdx");
      assert.equal((await platter(["convert", join(dir, "vhdx/block1m.vhdx"), mine])).code, 0);
      for (const path of ["vhdx/dynamic.vhdx", "vhdx/fixed.vhdx", "vhdx/block1m.vhdx", "big/big.vhdx"].map((n) => join(dir, n)).concat(mine)) {
        assert.equal((await qemuCheck(path, "vhdx")).code, 0, path);
        const { code, report } = await platterCheck(path);
        assert.equal(code, 0, `${path}: ${JSON.stringify(report.checks)}`);
      }
    });

    test("a BAT entry past the end of the file: the corruption qemu-img check counts; the block in doubt, in partition 1", async () => {
      // Block 9 (guest 9 MiB) holds ext4 data in qemu's 1 MiB-block image.
      const path = damaged("vhdx/block1m.vhdx", "past.vhdx", (image) => encodeBatEntry({ state: PayloadState.fullyPresent, offset: 100 * MiB }, image, batEntry(image, 9).at));
      const qemu = await qemuCheck(path, "vhdx");
      assert.equal(qemu.corruptions, 1);
      assert.match(qemu.output, /VHDX BAT entry 9 start offset 104857600 points after end of file/);
      const { code, report, text } = await platterCheck(path);
      assert.equal(code, 1);
      assert.equal(report.corruptions, qemu.corruptions);
      assert.match(text, /VHDX BAT entry 9 \(guest offset 9437184\) points at byte 104857600, past the end of the file/);
      assert.deepEqual(report.damaged, [{ offset: 9 * MiB, length: MiB, partitions: [ROOT] }]);
    });

    test("a BAT entry inside the metadata region: the corruption qemu-img check counts", async () => {
      const path = damaged("vhdx/block1m.vhdx", "in-metadata.vhdx", (image) => {
        const md = decodeRegionTable(image.subarray(REGION_TABLE_OFFSETS[0])).find((r) => r.guid === REGION.metadata);
        encodeBatEntry({ state: PayloadState.fullyPresent, offset: md?.fileOffset ?? 0 }, image, batEntry(image, 9).at);
      });
      const qemu = await qemuCheck(path, "vhdx");
      assert.equal(qemu.corruptions, 1);
      const { code, report, text } = await platterCheck(path);
      assert.equal(code, 1);
      assert.equal(report.corruptions, 1);
      assert.match(text, /VHDX BAT entry 9 .* inside the metadata region/);
    });

    test("two BAT entries made equal: qemu-img check does not look; platter names both, both blocks in doubt", async () => {
      const path = damaged("vhdx/block1m.vhdx", "shared.vhdx", (image) => image.copy(image, batEntry(image, 9).at, batEntry(image, 2).at, batEntry(image, 2).at + 8));
      assert.equal((await qemuCheck(path, "vhdx")).code, 0);
      const { code, report, text } = await platterCheck(path);
      assert.equal(code, 1);
      assert.match(text, /VHDX BAT entry 9 points at byte \d+, inside the block of VHDX BAT entry 2/);
      assert.deepEqual(
        report.damaged.map((d) => [d.offset, d.length]),
        [
          [2 * MiB, MiB],
          [9 * MiB, MiB],
        ],
      );
    });

    test("a checksum byte flipped in one header: qemu-img check uses the other and says clean; platter says which, and the disk still reads", async () => {
      const path = damaged("vhdx/block1m.vhdx", "header.vhdx", (image) => (image[HEADER_OFFSETS[0] + 4] ^= 0x01));
      assert.equal((await qemuCheck(path, "vhdx")).code, 0);
      const { code, report, text } = await platterCheck(path);
      assert.equal(code, 1);
      assert.match(text, /VHDX header at byte 65536: CRC-32C 0x[0-9a-f]{8} should be/);
      assert.deepEqual(report.damaged, []);
      const hash = await platter(["hash", path, "--hash", "sha256"]);
      assert.equal(hash.stdout.split(" ")[0], readFileSync(join(dir, "vhdx/block1m.vhdx.sha256"), "utf8").trim());
    });

    test("a log left to replay: qemu-img check refuses without -r all; platter names it and checks the tables as replayed", async () => {
      const path = join(dir, "vhdx/dirty.vhdx");
      const qemu = await qemuCheck(path, "vhdx");
      assert.notEqual(qemu.code, 0);
      assert.match(qemu.output, /qemu-img check -r all/);
      const { code, report, text } = await platterCheck(path);
      assert.equal(code, 1);
      assert.equal(report.corruptions, 1);
      assert.match(text, /the log holds 1 change\(s\) its writer did not finish applying \(qemu-img check -r all replays them\)/);
    });

    test("hostile: a virtual size of 1 TiB, then 64 TiB, in a 17 MiB file: the short BAT is a corruption (qemu-img refuses the file), the huge one a clean refusal", async () => {
      const withSize = (as: string, size: number) =>
        damaged("vhdx/block1m.vhdx", as, (image) => {
          const md = decodeRegionTable(image.subarray(REGION_TABLE_OFFSETS[0])).find((r) => r.guid === REGION.metadata);
          assert.ok(md);
          const items = decodeMetadataTable(image.subarray(md.fileOffset, md.fileOffset + METADATA_TABLE_BYTES), md.length, "metadata");
          const item = items.find((i) => i.itemId === METADATA_ITEM.virtualDiskSize);
          image.writeBigUInt64LE(BigInt(size), md.fileOffset + (item?.offset ?? 0));
        });
      const short = withSize("short-bat.vhdx", 1024 ** 4);
      assert.notEqual((await qemuCheck(short, "vhdx")).code, 0);
      const { code, text } = await platterCheck(short);
      assert.equal(code, 1);
      assert.match(text, /the BAT region holds 131072 entries, the disk needs 1048831/);
      const huge = await platter(["check", withSize("huge.vhdx", 64 * 1024 ** 4)]);
      assert.equal(huge.code, 1);
      assert.equal(huge.stderr, `platter: ${join(work, "huge.vhdx")}: VHDX: a BAT of 67125247 entries: more than any real VHDX has\n`);
    });

    test("hostile: a partially present block in a disk with no parent, an unknown state: named, not read", async () => {
      const path = damaged("vhdx/block1m.vhdx", "states.vhdx", (image) => {
        for (const [index, state] of [
          [9, PayloadState.partiallyPresent],
          [2, 4],
        ]) {
          const { at, offset } = batEntry(image, index);
          encodeBatEntry({ state, offset }, image, at);
        }
      });
      const { code, report, text } = await platterCheck(path);
      assert.equal(code, 1);
      assert.equal(report.corruptions, 2);
      assert.match(text, /BAT entry 2 \(guest offset 2097152\) has unknown state 4/);
      assert.match(text, /BAT entry 9 \(guest offset 9437184\) is partially present, which only a differencing disk can be/);
    });
  });

  describe("VMDK", () => {
    /** The grain directory, the redundant one, and the first grain table of a hosted sparse extent. */
    const tables = (image: Buffer) => {
      const header = decodeSparseHeader(image.subarray(0, 512), "header");
      const gd = (header.gdOffset as number) * 512;
      const rgd = header.rgdOffset * 512;
      return { gt: image.readUInt32LE(gd) * 512, rgt: image.readUInt32LE(rgd) * 512 };
    };
    /** Set grain table entry `index` of the first table, in both copies (consistent damage). */
    const setEntry = (image: Buffer, index: number, value: number) => {
      const { gt, rgt } = tables(image);
      image.writeUInt32LE(value, gt + index * 4);
      image.writeUInt32LE(value, rgt + index * 4);
    };

    test("the images qemu-img made and platter's own streamOptimized one: clean, as qemu-img check says", async () => {
      const mine = join(work, "platter.vmdk");
      assert.equal((await platter(["convert", join(dir, "vmdk/sparse.vmdk"), mine])).code, 0);
      for (const path of ["vmdk/sparse.vmdk", "vmdk/stream.vmdk", "vmdk/zeroed.vmdk", "vmdk/flat.vmdk", "vmdk/chain/top.vmdk", "big/split.vmdk"].map((n) => join(dir, n)).concat(mine)) {
        assert.equal((await qemuCheck(path, "vmdk")).code, 0, path);
        const { code, report } = await platterCheck(path);
        assert.equal(code, 0, `${path}: ${JSON.stringify(report.checks)}`);
      }
    });

    for (const [name, fixture] of [
      ["monolithicSparse", "vmdk/sparse.vmdk"],
      ["streamOptimized", "vmdk/stream.vmdk"],
    ]) {
      test(`${name}: a grain table entry past the end of the file, as qemu-img check finds it; the grain in doubt, in partition 1`, async () => {
        // Grain 16 (guest 1 MiB, 64 KiB grains) holds the ext4 superblock.
        const path = damaged(fixture, `past-${name}.vmdk`, (image) => setEntry(image, 16, 100_000));
        const qemu = await qemuCheck(path, "vmdk");
        assert.notEqual(qemu.code, 0);
        assert.match(qemu.output, /ERROR: cluster offset for sector 2048 points after EOF/);
        const { code, report, text } = await platterCheck(path);
        assert.equal(code, 1);
        assert.equal(report.corruptions, 1, text);
        assert.match(text, /grain table entry for grain 16 \(extent offset 1048576\) points at byte 51200000, past the end of the file/);
        // The superblock is in the damaged grain: the partition is named, its filesystem no longer recognised.
        assert.deepEqual(report.damaged, [{ offset: MiB, length: 65536, partitions: [{ number: 1, filesystem: null, label: null }] }]);
      });
    }

    test("two grain table entries made equal: qemu-img check does not look; platter names both grains", async () => {
      const path = damaged("vmdk/sparse.vmdk", "shared.vmdk", (image) => setEntry(image, 17, image.readUInt32LE(tables(image).gt + 16 * 4)));
      assert.equal((await qemuCheck(path, "vmdk")).code, 0);
      const { code, report, text } = await platterCheck(path);
      assert.equal(code, 1);
      assert.equal(report.corruptions, 1);
      assert.match(text, /VMDK grain table entry for grain 17 points at byte \d+, inside the block of VMDK grain table entry for grain 16/);
      assert.deepEqual(
        report.damaged.map((d) => [d.offset, d.length]),
        [[MiB, 2 * 65536]],
      );
    });

    test("the redundant grain table disagreeing with the primary: qemu-img check does not compare them; platter names the grains", async () => {
      const path = damaged("vmdk/sparse.vmdk", "redundant.vmdk", (image) => image.writeUInt32LE(0, tables(image).rgt + 17 * 4));
      assert.equal((await qemuCheck(path, "vmdk")).code, 0);
      const { code, report, text } = await platterCheck(path);
      assert.equal(code, 1);
      assert.match(text, /redundant grain directory entry 0: its grain table at byte \d+ disagrees with the primary on 1 grain\(s\), from grain 17/);
      assert.deepEqual(report.damaged.map((d) => [d.offset, d.length]), [[17 * 65536, 65536]]);
    });

    test("a streamOptimized grain whose marker names another sector: named", async () => {
      const path = damaged("vmdk/stream.vmdk", "marker.vmdk", (image) => setEntry(image, 17, image.readUInt32LE(tables(image).gt + 16 * 4)));
      const { code, text } = await platterCheck(path);
      assert.equal(code, 1);
      assert.match(text, /compressed grain at byte \d+ \(extent offset 1114112\): its marker says sector 2048, not 2176/);
    });

    test("hostile: every entry of a grain table naming one grain is bounded work, each overlap counted", async () => {
      const path = damaged("vmdk/sparse.vmdk", "one-grain.vmdk", (image) => {
        const first = image.readUInt32LE(tables(image).gt);
        for (let i = 0; i < 512; i++) setEntry(image, i, first);
      });
      const { code, report } = await platterCheck(path);
      assert.equal(code, 1);
      assert.equal(report.corruptions, 511);
      assert.deepEqual(report.damaged.map((d) => [d.offset, d.length]), [[0, 512 * 65536]]);
    });

    test("a flat extent file missing: qemu-img cannot open it; platter exits 1 naming the extent", async () => {
      const alone = join(work, "flat-alone");
      mkdirSync(alone, { recursive: true });
      copyFileSync(join(dir, "vmdk/flat.vmdk"), join(alone, "flat.vmdk"));
      assert.notEqual((await qemuCheck(join(alone, "flat.vmdk"), "vmdk")).code, 0);
      const { code, text } = await platterCheck(join(alone, "flat.vmdk"));
      assert.equal(code, 1);
      assert.match(text, /VMDK extent "flat-flat\.vmdk": no such file next to the descriptor/);
    });
  });
});
