import assert from "node:assert/strict";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, test } from "node:test";
import { crc32 } from "node:zlib";
import { CorruptImageError } from "../../src/errors.js";
import { MemorySource } from "../../src/io/memory-source.js";
import {
  decodeGptEntry,
  decodeGptHeader,
  encodeGptEntry,
  encodeGptHeader,
  gptAttributeNames,
} from "../../src/partition/gpt.js";
import { decodeGuid, encodeGuid } from "../../src/partition/guid.js";
import { readDiskTable as readPartitionTable } from "../../src/image/disk-table.js";
import { decodeEbr, decodeMbr, encodeMbr } from "../../src/partition/mbr.js";
import { needs } from "../helpers/env.js";
import { fixture } from "../helpers/fixtures.js";
import { run, sh } from "../helpers/run.js";
import { tempDir } from "../helpers/tmp.js";
import { assertMatchesSfdisk, sfdiskJson } from "../helpers/sfdisk.js";
import { buildGptDisk, buildMbrDisk, mbrEntry as entry, SAMPLE_GPT_ENTRIES } from "../helpers/tables.js";

describe("MBR and GPT encoders write tables the real tools accept", () => {
  test("encodeMbr/encodeEbr: sfdisk --json reads the same partitions (logicals numbered 5, 6), fdisk -l lists them", { skip: needs("sfdisk", "fdisk") }, async () => {
    const path = join(tempDir(), "mbr.img");
    writeFileSync(path, buildMbrDisk());
    const table = await readPartitionTable(new MemorySource(readFileSync(path)));
    assert.deepEqual(table.warnings, []);
    assert.deepEqual(table.partitions.map((p) => [p.number, p.start, p.sectors, p.type]), [
      [1, 2048, 4096, "0c"],
      [2, 6144, 2048, "83"],
      [3, 8192, 24576, "05"],
      [5, 10240, 4096, "83"],
      [6, 16384, 4096, "82"],
    ]);
    assertMatchesSfdisk(table, await sfdiskJson(path));
    const fdisk = await run("fdisk", ["-l", path]);
    assert.equal(fdisk.code, 0, fdisk.stderr);
    assert.match(fdisk.stdout, /Disk identifier: 0xc0ffee01/);
    assert.match(fdisk.stdout, /mbr\.img6\s+16384\s+20479\s+4096\s+2M\s+82 Linux swap/);
    assert.doesNotMatch(fdisk.stdout + fdisk.stderr, /invalid|overlap|doesn't/i);
  });

  test("encodeGptHeader/encodeGptEntries: sgdisk -v finds no problems; sfdisk --json reads names, GUIDs and attributes back", { skip: needs("sgdisk", "sfdisk") }, async () => {
    const path = join(tempDir(), "gpt.img");
    writeFileSync(path, buildGptDisk(SAMPLE_GPT_ENTRIES));
    const verify = await run("sgdisk", ["-v", path]);
    assert.match(verify.stdout, /No problems found/, verify.stdout + verify.stderr);
    const table = await readPartitionTable(new MemorySource(readFileSync(path)));
    assert.deepEqual(table.warnings, []);
    assertMatchesSfdisk(table, await sfdiskJson(path));
    assert.deepEqual(table.partitions[1].attributes, ["RequiredPartition", "LegacyBIOSBootable", "GUID:60"]);
    assert.equal(table.partitions[1].bootable, true);
  });

  test("GPT encoded for 4096-byte sectors: sgdisk -v on a 4K loop device finds no problems", { skip: needs("root", "loop", "sgdisk", "losetup") }, async () => {
    const path = join(tempDir(), "gpt4k.img");
    writeFileSync(path, buildGptDisk(SAMPLE_GPT_ENTRIES.map((e) => ({ ...e, firstLba: e.firstLba / 8, lastLba: (e.lastLba + 1) / 8 - 1 })), 4096));
    const table = await readPartitionTable(new MemorySource(readFileSync(path)));
    assert.equal(table.sectorSize, 4096);
    assert.deepEqual(table.warnings, []);
    const loop = (await sh(`losetup -f --show --sector-size 4096 ${path}`)).trim();
    try {
      const verify = await run("sgdisk", ["-v", loop]);
      assert.match(verify.stdout, /No problems found/, verify.stdout + verify.stderr);
    } finally {
      await sh(`losetup -d ${loop}`);
    }
  });
});

describe("codecs decode what real tools wrote, and round-trip", () => {
  test("decodeGptHeader on sgdisk's header: disk GUID, usable LBAs as sfdisk --json reports them, both CRCs valid", { skip: needs("sgdisk", "sfdisk") }, async () => {
    const img = await fixture("make-gpt-image.sh", "gpt.img");
    const head = readFileSync(img).subarray(0, 34 * 512);
    const header = decodeGptHeader(head.subarray(512, 1024));
    const sfdisk = (JSON.parse((await run("sfdisk", ["--json", img])).stdout) as { partitiontable: { id: string; firstlba: number; lastlba: number } })
      .partitiontable;
    assert.equal(header.crcValid, true);
    assert.equal(header.diskGuid, sfdisk.id);
    assert.equal(header.firstUsableLba, sfdisk.firstlba);
    assert.equal(header.lastUsableLba, sfdisk.lastlba);
    assert.equal(crc32(head.subarray(1024, 1024 + header.entryCount * header.entrySize)), header.entriesCrc32);
    // Re-encoding the decoded header gives sgdisk's bytes back.
    assert.deepEqual(encodeGptHeader(header), head.subarray(512, 1024));
    const first = decodeGptEntry(head, 1024);
    assert.equal(first.name, "EFI System Partition");
    assert.deepEqual(encodeGptEntry(first), head.subarray(1024, 1152));
  });

  test("decodeMbr/encodeMbr round-trip sfdisk's sector 0 byte for byte (CHS included)", { skip: needs("sfdisk") }, async () => {
    const img = await fixture("make-mbr-image.sh", "mbr.img");
    const sector = readFileSync(img).subarray(0, 512);
    const mbr = decodeMbr(sector);
    assert.equal(mbr.diskSignature, 0x5eed0001);
    assert.deepEqual(encodeMbr(mbr), sector);
    // Recomputed CHS values equal sfdisk's (255 heads, 63 sectors).
    const recomputed = encodeMbr({ ...mbr, entries: mbr.entries.map(({ chsStart: _s, chsEnd: _e, ...rest }) => rest) });
    assert.deepEqual(recomputed, sector);
  });

  test("EBR: data entries and the link, with DRDOS's swapped order", () => {
    const ebr = decodeEbr(encodeMbr({ entries: [entry(4096, 100, 0x05), entry(63, 1000, 0x83)] }));
    assert.equal(ebr.data.length, 1);
    assert.equal(ebr.data[0].slot, 1);
    assert.equal(ebr.next?.startLba, 4096);
  });

  test("GUIDs are mixed-endian on disk and upper case in text", () => {
    const text = "C12A7328-F81F-11D2-BA4B-00A0C93EC93B";
    const bytes = encodeGuid(text);
    assert.equal(bytes.toString("hex"), "28732ac11ff8d211ba4b00a0c93ec93b");
    assert.equal(decodeGuid(bytes), text);
    assert.throws(() => encodeGuid("not-a-guid"), /invalid GUID/);
  });

  test("attribute names as sfdisk prints them", () => {
    assert.deepEqual(gptAttributeNames((1n << 63n) | 2n), ["NoBlockIOProtocol", "GUID:63"]);
  });

  test("validation errors name the field", () => {
    assert.throws(() => decodeMbr(Buffer.alloc(100)), (e: unknown) => e instanceof CorruptImageError && /MBR: need 512 bytes/.test(e.message));
    const bad = Buffer.alloc(512);
    bad.write("EFI PART");
    bad.writeUInt32LE(600, 12);
    assert.throws(() => decodeGptHeader(bad), /header size 600 is out of range/);
    assert.throws(() => decodeGptHeader(Buffer.alloc(512)), /bad signature/);
    assert.throws(() => encodeMbr({ entries: [entry(-1, 5, 0x83)] }), /startLba -1 is out of range/);
    assert.throws(() => encodeGptEntry({ ...SAMPLE_GPT_ENTRIES[0], name: "x".repeat(37) }), /longer than 36/);
  });
});
