/**
 * Hostile input: random and bit-flipped partition tables and superblocks,
 * in process on MemorySource. Every one must end in a result or a clean
 * PlatterError: never a hang, a crash, a RangeError or a TypeError.
 */
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, test } from "node:test";
import { crc32 } from "node:zlib";
import { probeFilesystem } from "../../src/fs/probe.js";
import type { BlockSource } from "../../src/io/block-source.js";
import { MemorySource } from "../../src/io/memory-source.js";
import { readDiskTable as readPartitionTable } from "../../src/image/disk-table.js";
import { encodeEbr, encodeMbr } from "../../src/partition/mbr.js";
import { choosePartition } from "../../src/image/partition-choice.js";
import { fixture } from "../helpers/fixtures.js";
import { needs } from "../helpers/env.js";
import { endsCleanly, ReadBudgetSource } from "../helpers/read-budget.js";
import { buildGptDisk, mbrEntry, SAMPLE_GPT_ENTRIES } from "../helpers/tables.js";

/** xorshift32: the same "random" inputs on every run, so a failure can be replayed. */
function rng(seed: number): () => number {
  let x = seed >>> 0 || 1;
  return () => {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    return x;
  };
}

/** Most bytes one call may read, in sizes of its disk (1 MiB at least): the greediest input here reads 1.13 disks; 4 is a loop. */
const READ_BUDGET = 4;

/** `run` on `disk` ends in a result or a PlatterError, having read at most READ_BUDGET times the disk. */
async function mustEndCleanly<T>(what: string, disk: Buffer, run: (source: BlockSource) => Promise<T>): Promise<T | undefined> {
  const source = new ReadBudgetSource(new MemorySource(disk), READ_BUDGET * Math.max(disk.length, 1 << 20));
  return endsCleanly(what, source, () => run(source));
}

/** Flip `flips` random bits inside [from, to) of a copy of `base`. */
function mutate(base: Buffer, next: () => number, from: number, to: number, flips: number): Buffer {
  const out = Buffer.from(base);
  for (let i = 0; i < flips; i++) {
    const at = from + (next() % (to - from));
    out[at] ^= 1 << (next() % 8);
  }
  return out;
}

/** After mutating a GPT, make its CRCs right again so the mutation reaches the deeper checks. */
function fixGptCrcs(disk: Buffer, sectorSize: number): void {
  for (const lba of [1, disk.length / sectorSize - 1]) {
    const header = disk.subarray(lba * sectorSize, (lba + 1) * sectorSize);
    if (header.toString("latin1", 0, 8) !== "EFI PART") continue;
    const entriesLba = Number(header.readBigUInt64LE(72));
    const bytes = header.readUInt32LE(80) * header.readUInt32LE(84);
    if (entriesLba * sectorSize + bytes <= disk.length && bytes <= 1 << 20) {
      header.writeUInt32LE(crc32(disk.subarray(entriesLba * sectorSize, entriesLba * sectorSize + bytes)), 88);
    }
    const size = header.readUInt32LE(12);
    if (size >= 92 && size <= sectorSize) {
      header.writeUInt32LE(0, 16);
      header.writeUInt32LE(crc32(header.subarray(0, size)), 16);
    }
  }
}

describe("hostile partition tables: 10,000 random and bit-flipped tables end cleanly", () => {
  test("10,000 mutated MBR/EBR and GPT disks (half with CRCs repaired): results or PlatterErrors only", async () => {
    const next = rng(0x5eed);
    // Small disks (copied for every iteration): 256 KiB MBR with two logicals, 128 KiB GPT.
    const mbrDisk = Buffer.alloc(512 * 512);
    encodeMbr({ entries: [mbrEntry(64, 64, 0x0c, 0x80), mbrEntry(128, 384, 0x05)] }).copy(mbrDisk, 0);
    encodeEbr({ logical: mbrEntry(16, 100, 0x83), next: mbrEntry(128, 128, 0x05) }).copy(mbrDisk, 128 * 512);
    encodeEbr({ logical: mbrEntry(16, 100, 0x82), next: null }).copy(mbrDisk, 256 * 512);
    const small = SAMPLE_GPT_ENTRIES.map((e, i) => ({ ...e, firstLba: 40 + 80 * i, lastLba: 119 + 80 * i }));
    const gptDisk = buildGptDisk(small, 512, 128 << 10);
    let tables = 0;
    let errors = 0;
    for (let i = 0; i < 10_000; i++) {
      let disk: Buffer;
      const kind = i % 4;
      if (kind === 0) {
        // MBR and the EBR chain: sector 0, and the EBRs at 8192 and 14336.
        disk = mutate(mbrDisk, next, 0, 512, 1 + (next() % 8));
        disk = mutate(disk, next, 128 * 512 + 440, 128 * 512 + 512, next() % 4);
        disk = mutate(disk, next, 256 * 512 + 440, 256 * 512 + 512, next() % 4);
      } else if (kind === 1) {
        disk = mutate(gptDisk, next, 0, 34 * 512, 1 + (next() % 16));
      } else if (kind === 2) {
        disk = mutate(gptDisk, next, 446, 2 * 512 + 128 * 4, 1 + (next() % 8));
        fixGptCrcs(disk, 512);
      } else {
        // Pure noise in the first sectors, with a valid MBR signature half the time.
        disk = Buffer.alloc(64 << 10);
        for (let b = 0; b < 3 * 512; b++) disk[b] = next() & 0xff;
        if (next() & 1) disk.writeUInt16BE(0x55aa, 510);
      }
      const table = await mustEndCleanly(`iteration ${i}`, disk, readPartitionTable);
      if (table) {
        tables++;
        for (const p of table.partitions) {
          assert.ok(Number.isSafeInteger(p.offset) && Number.isSafeInteger(p.length), `iteration ${i}: partition ${p.number}`);
        }
      } else errors++;
    }
    assert.equal(tables + errors, 10_000);
    assert.ok(tables > 5000, `only ${tables} of 10,000 gave a table`);
  });

  test("an EBR chain that loops back on itself ends, with a warning (sfdisk also lists the partitions once)", async () => {
    const disk = Buffer.alloc(32768 * 512);
    encodeMbr({ entries: [mbrEntry(2048, 30720, 0x05)] }).copy(disk, 0);
    // EBR at 2048 -> EBR at 4096 -> back to the EBR at 2048.
    encodeEbr({ logical: mbrEntry(63, 1000, 0x83), next: mbrEntry(2048, 4096, 0x05) }).copy(disk, 2048 * 512);
    encodeEbr({ logical: mbrEntry(63, 1000, 0x83), next: mbrEntry(0, 4096, 0x05) }).copy(disk, 4096 * 512);
    const table = await readPartitionTable(new MemorySource(disk));
    assert.deepEqual(table.partitions.map((p) => [p.number, p.start]), [
      [1, 2048],
      [5, 2111],
      [6, 4159],
    ]);
    assert.match(table.warnings.join("\n"), /loops back to the EBR at sector 2048/);
  });

  test("an EBR that links to itself, and a chain longer than any real one, both end", async () => {
    const disk = Buffer.alloc(40000 * 512);
    encodeMbr({ entries: [mbrEntry(2048, 37000, 0x0f)] }).copy(disk, 0);
    encodeEbr({ logical: mbrEntry(1, 1, 0x83), next: mbrEntry(0, 1, 0x05) }).copy(disk, 2048 * 512);
    const self = await readPartitionTable(new MemorySource(disk));
    assert.equal(self.partitions.length, 2);
    assert.match(self.warnings.join("\n"), /loops back/);
    for (let k = 0; k < 300; k++) {
      encodeEbr({ logical: mbrEntry(1, 1, 0x83), next: mbrEntry(2 * (k + 1), 2, 0x05) }).copy(disk, (2048 + 2 * k) * 512);
    }
    const long = await readPartitionTable(new MemorySource(disk));
    assert.match(long.warnings.join("\n"), /more than 128 EBRs/);
  });
});

describe("hostile superblocks: the probe and choosePartition end cleanly on bit-flipped real filesystems", () => {
  test("1,000 bit-flipped images of every probed format: a result, null or a PlatterError", { skip: needs("blkid") }, async () => {
    const dir = await fixture("make-probe-images.sh", "probe-images");
    const names = ["ext4.img", "vfat12.img", "vfat32.img", "exfat.img", "ntfs.img", "swap.img", "squashfs.img", "iso-joliet.iso", "udf.img", "luks2.img"];
    const next = rng(0xf5);
    for (const name of names) {
      let base: Buffer;
      try {
        base = readFileSync(join(dir, name));
      } catch {
        continue; // its mkfs tool was missing
      }
      // The probed regions: the first 64 KiB, and the first MiB for structures found through pointers.
      const span = Math.min(base.length, 1 << 20);
      for (let i = 0; i < 100; i++) {
        const img = mutate(base, next, 0, i % 2 ? 65536 : span, 1 + (next() % 32));
        await mustEndCleanly(`${name} #${i}`, img, probeFilesystem);
        await mustEndCleanly(`${name} #${i} choose`, img, choosePartition);
      }
    }
  });
});
