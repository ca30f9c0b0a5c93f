import assert from "node:assert/strict";
import { copyFileSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, test } from "node:test";
import { probeFilesystem } from "../../src/fs/probe.js";
import { openSource } from "../../src/io/file-source.js";
import { SliceSource } from "../../src/io/slice-source.js";
import { readDiskTable as readPartitionTable } from "../../src/image/disk-table.js";
import type { PartitionTable } from "../../src/partition/types.js";
import { assertMatchesSfdisk, type SfdiskTable, sfdiskJson } from "../helpers/sfdisk.js";
import { blkid, expectedProbe } from "../helpers/blkid.js";
import { needs } from "../helpers/env.js";
import { fixture } from "../helpers/fixtures.js";
import { run, sh } from "../helpers/run.js";
import { tempDir } from "../helpers/tmp.js";

/** Everything `sgdisk -v` says (its cautions go to stderr, its verdict to stdout). */
async function sgdiskVerify(path: string): Promise<string> {
  const r = await run("sgdisk", ["-v", path]);
  return `${r.stderr}\n${r.stdout}`;
}

async function readTable(path: string): Promise<PartitionTable> {
  const source = await openSource(path);
  try {
    return await readPartitionTable(source);
  } finally {
    await source.close();
  }
}

describe("partition tables agree with sfdisk --json and blkid", () => {
  test("MBR disk with an extended partition and two logicals: every field as sfdisk --json; filesystems as blkid", { skip: needs("sfdisk", "blkid") }, async () => {
    const img = await fixture("make-mbr-image.sh", "mbr.img");
    const table = await readTable(img);
    assertMatchesSfdisk(table, await sfdiskJson(img));
    assert.deepEqual(table.warnings, []);
    assert.deepEqual(
      table.partitions.map((p) => [p.number, p.typeName, p.container]),
      [
        [1, "Linux", false],
        [2, "Extended", true],
        [5, "W95 FAT32 (LBA)", false],
        [6, "Linux", false],
      ],
    );
    await assertProbesMatchBlkid(img, table);
  });

  test("GPT disk (ESP, ext4, swap, exFAT with a unicode name): every field as sfdisk --json; filesystems as blkid", { skip: needs("sfdisk", "blkid") }, async () => {
    const img = await fixture("make-gpt-image.sh", "gpt.img");
    const table = await readTable(img);
    assertMatchesSfdisk(table, await sfdiskJson(img));
    assert.deepEqual(table.warnings, []);
    assert.deepEqual(
      table.partitions.map((p) => p.typeName),
      ["EFI system partition", "Linux filesystem", "Linux swap", "Microsoft basic data"],
    );
    await assertProbesMatchBlkid(img, table);
  });

  test("4Kn GPT in a plain file: the 4096-byte sector size is detected; fields as sfdisk --json on a 4K loop device", { skip: needs("root", "loop", "sgdisk", "blkid") }, async () => {
    const img = await fixture("make-4kn-gpt-image.sh", "4kn.img");
    const expected = (JSON.parse(readFileSync(`${img}.expected.json`, "utf8")) as { partitiontable: SfdiskTable }).partitiontable;
    const table = await readTable(img);
    assert.equal(table.sectorSize, 4096);
    assertMatchesSfdisk(table, expected);
    assert.deepEqual(table.warnings, []);
    await assertProbesMatchBlkid(img, table);
  });
});

async function assertProbesMatchBlkid(img: string, table: PartitionTable): Promise<void> {
  const source = await openSource(img);
  try {
    for (const p of table.partitions.filter((x) => !x.container)) {
      const expected = expectedProbe(await blkid(img, { offset: p.offset, length: p.length }));
      assert.deepEqual(await probeFilesystem(new SliceSource(source, p.offset, p.length)), expected, `partition ${p.number}`);
    }
  } finally {
    await source.close();
  }
}

describe("damaged GPTs: the backup is used and the problem is said, as sgdisk -v says it", { skip: needs("sgdisk", "sfdisk") }, async () => {
  const gpt = await fixture("make-gpt-image.sh", "gpt.img");
  const dir = tempDir();
  const good = await readTable(gpt);

  async function damaged(name: string, patch: string): Promise<string> {
    const path = join(dir, name);
    copyFileSync(gpt, path);
    await sh(patch.replaceAll("IMG", path));
    return path;
  }

  test("primary header CRC broken: partitions from the backup, a warning; sgdisk -v finds the main header bad", async () => {
    const img = await damaged("hdr.img", "printf '\\x00\\x00' | dd of=IMG bs=1 seek=528 conv=notrunc status=none");
    assert.match(await sgdiskVerify(img), /Main header: ERROR/);
    const table = await readTable(img);
    assert.deepEqual(table.partitions, good.partitions);
    assert.equal(table.warnings.length, 1);
    assert.match(table.warnings[0], /primary GPT is corrupt \(header CRC32 mismatch\); using the backup GPT at LBA 196607/);
    assertMatchesSfdisk(table, await sfdiskJson(img));
  });

  test("primary entry array changed: partitions from the backup, a warning; sgdisk -v finds the main table bad", async () => {
    const img = await damaged("entries.img", "printf 'X' | dd of=IMG bs=1 seek=1084 conv=notrunc status=none");
    assert.match(await sgdiskVerify(img), /Main partition table: ERROR/);
    const table = await readTable(img);
    assert.deepEqual(table.partitions, good.partitions);
    assert.match(table.warnings.join("\n"), /primary GPT is corrupt \(partition entry array CRC32 mismatch\); using the backup/);
  });

  test("backup header broken: the primary is used, and the backup's problem is a warning (sgdisk -v: Backup header: ERROR)", async () => {
    const img = await damaged("backup.img", "printf 'X' | dd of=IMG bs=1 seek=$((196607*512+20)) conv=notrunc status=none");
    assert.match(await sgdiskVerify(img), /Backup header: ERROR/);
    const table = await readTable(img);
    assert.deepEqual(table.partitions, good.partitions);
    assert.match(table.warnings.join("\n"), /backup GPT header at LBA 196607 is unusable \(header CRC32 mismatch\)/);
  });

  test("both headers broken: a clear error naming both", async () => {
    const img = await damaged(
      "both.img",
      "printf '\\x00' | dd of=IMG bs=1 seek=528 conv=notrunc status=none; printf 'X' | dd of=IMG bs=1 seek=$((196607*512+20)) conv=notrunc status=none",
    );
    await assert.rejects(readTable(img), /both GPTs are unusable: primary \(LBA 1\): header CRC32 mismatch; backup \(LBA 196607\): header CRC32 mismatch/);
  });

  test("truncated image: the backup is gone and the last partition runs past the end: warnings, partitions still listed (sgdisk -v complains too)", async () => {
    const img = await damaged("short.img", "truncate -s 90M IMG");
    assert.match(await sgdiskVerify(img), /Backup header: ERROR/);
    const table = await readTable(img);
    assert.deepEqual(table.partitions, good.partitions);
    const text = table.warnings.join("\n");
    assert.match(text, /backup GPT header at LBA 196607 is unusable \(LBA 196607 is past the end of the image\)/);
    assert.match(text, /partition 4 \(sectors 137216-196574\) extends past the end of the image \(184320 sectors\)/);
  });

  test("hybrid MBR (sgdisk -h): the GPT is listed, with a warning that the MBR lists partitions too", async () => {
    const img = await damaged("hybrid.img", "sgdisk -h 1:2 IMG >/dev/null");
    const table = await readTable(img);
    assert.equal(table.scheme, "gpt");
    assert.deepEqual(table.partitions, good.partitions);
    assert.match(table.warnings.join("\n"), /hybrid MBR/);
    assertMatchesSfdisk(table, await sfdiskJson(img));
  });

  test("stale GPT under a new MBR (no protective entry): the MBR is listed, as sfdisk does, with a warning", async () => {
    const img = await damaged("stale.img", "printf 'label: dos\\nstart=2048, size=4096, type=83\\n' | sfdisk -q --wipe never IMG >/dev/null");
    const table = await readTable(img);
    assertMatchesSfdisk(table, await sfdiskJson(img));
    assert.match(table.warnings.join("\n"), /GPT header is present too, but the MBR has no protective \(type ee\) entry: listing the MBR/);
  });
});

describe("damaged MBRs", { skip: needs("sfdisk") }, async () => {
  const mbr = await fixture("make-mbr-image.sh", "mbr.img");
  const dir = tempDir();

  test("truncated inside the extended partition: logicals past the end are warned about, the rest listed", async () => {
    const img = join(dir, "short.img");
    copyFileSync(mbr, img);
    await sh(`truncate -s $((100000*512)) ${img}`);
    const table = await readTable(img);
    assert.deepEqual(table.partitions.map((p) => p.number), [1, 2, 5]);
    const text = table.warnings.join("\n");
    assert.match(text, /the EBR at sector 110592 is past the end of the image/);
    assert.match(text, /partition 2 \(sectors 34816-131071\) extends past the end/);
    assert.match(text, /partition 5 \(sectors 36864-110591\) extends past the end/);
  });
});
