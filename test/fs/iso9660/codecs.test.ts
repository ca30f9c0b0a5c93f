import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { SECTOR_SIZE } from "../../../src/fs/iso9660/constants.js";
import { decodeRecordDate, decodeVolumeDate, encodeRecordDate, encodeVolumeDate } from "../../../src/fs/iso9660/dates.js";
import { decodeDirectoryRecord, encodeDirectoryRecord } from "../../../src/fs/iso9660/directory-record.js";
import {
  BootInfoChecksum,
  decodeBootCatalog,
  encodeBootCatalog,
  PLATFORM_EFI,
  PLATFORM_X86,
} from "../../../src/fs/iso9660/el-torito.js";
import { compareIdentifiers, isoIdentifiers } from "../../../src/fs/iso9660/iso-names.js";
import { JOLIET_MAX_NAME, jolietNames } from "../../../src/fs/iso9660/joliet.js";
import { decodePathTable, encodePathTable } from "../../../src/fs/iso9660/path-table.js";
import { applyRockRidgeEntry, emptyRockRidgeInfo, encodeNm, encodeSl } from "../../../src/fs/iso9660/rrip.js";
import { decodeSuspEntries, encodeSuspEntry } from "../../../src/fs/iso9660/susp.js";
import { readSuspArea } from "../../../src/fs/iso9660/susp-reader.js";
import { decodePrimaryVolumeDescriptor, encodePrimaryVolumeDescriptor } from "../../../src/fs/iso9660/volume-descriptor.js";
import { ContinuationAreas } from "../../../src/fs/iso9660/writer/continuation.js";
import { MemorySource } from "../../../src/io/memory-source.js";
import { openSource } from "../../../src/io/file-source.js";
import { needs } from "../../helpers/env.js";
import { referenceIso } from "./helpers.js";

function rockRidge(entries: Buffer[]) {
  const info = emptyRockRidgeInfo();
  for (const e of decodeSuspEntries(Buffer.concat(entries))) applyRockRidgeEntry(info, e);
  return info;
}

describe("ISO 9660 record codecs", () => {
  test("dates: 7-byte and 17-byte forms round-trip, clamp out of range, read time zones", () => {
    for (const t of [0, 315532800, 1234567890, 1700000000, 4102444800]) {
      assert.equal(decodeRecordDate(encodeRecordDate(t)), t);
      assert.equal(decodeVolumeDate(encodeVolumeDate(t)), t);
    }
    assert.equal(decodeRecordDate(encodeRecordDate(-3e9)), Date.UTC(1900, 0, 1) / 1000);
    assert.equal(decodeVolumeDate(encodeVolumeDate(null)), null);
    assert.equal(encodeVolumeDate(1700000000.25).toString("latin1", 0, 16), "2023111422132025");
    // 12:00 at UTC+1 (offset 4 quarter hours) is 11:00 UTC.
    const plusOne = Buffer.from([123, 11, 14, 12, 0, 0, 4]);
    assert.equal(decodeRecordDate(plusOne), Date.UTC(2023, 10, 14, 11) / 1000);
  });

  test("names: ISO 9660 identifiers are d-characters, at most 30+3 bytes, unique after ';1' and a trailing dot go", () => {
    const names = [
      ...Array.from({ length: 9 }, (_, i) => `longname-collides-${i + 1}.txt`),
      "README",
      "README.d",
      "readme.",
      "café.txt",
      "日本語.txt",
      ".hidden",
      "x".repeat(200),
    ];
    const ids = isoIdentifiers(names.map((name) => ({ name, isDirectory: name === "README.d" })));
    for (const id of ids) {
      assert.match(id, /^[A-Z0-9_]*(\.[A-Z0-9_]*;1)?$/, id);
      assert.ok(id.length <= 33, id);
    }
    const visible = ids.map((id) => id.replace(/;1$/, "").replace(/\.$/, ""));
    assert.equal(new Set(visible).size, ids.length, ids.join(" "));
    assert.equal(ids[names.indexOf("café.txt")], "CAFE.TXT;1");
    assert.equal(ids[names.indexOf("README.d")], "README_D");
  });

  test("names: Joliet names keep up to 103 characters and the extension, and stay unique", () => {
    const long = `${"a".repeat(150)}.txt`;
    const names = jolietNames([long, `${long}2`, "semi;colon", "trailing.", "emoji 😀"].map((name) => ({ name, isDirectory: false })));
    assert.equal(names[0], `${"a".repeat(JOLIET_MAX_NAME - 4)}.txt`);
    assert.equal(names[0].length, JOLIET_MAX_NAME);
    assert.notEqual(names[1], names[0]);
    assert.ok(names[1].length <= JOLIET_MAX_NAME);
    assert.deepEqual(names.slice(2), ["semi_colon", "trailing", "emoji _"]);
  });

  test("ordering follows ECMA-119 9.3: name, then extension, padded with spaces", () => {
    const ids = ["A.B1;1", "A.B;1", "AB.;1", "A.;1", "A2"];
    assert.deepEqual(ids.sort(compareIdentifiers), ["A.;1", "A.B;1", "A.B1;1", "A2", "AB.;1"]);
  });

  test("NM and SL: long names and targets split into several entries and read back whole", () => {
    const name = Buffer.from("N".repeat(255));
    assert.equal(encodeNm(name).length, 2);
    assert.deepEqual(rockRidge(encodeNm(name)).name, name);
    for (const target of ["/", "a", "../x", "/usr/lib/", "a//b", `/${"c".repeat(300)}/..//${"d/".repeat(200)}e`, "./.."]) {
      const entries = encodeSl(Buffer.from(target));
      for (const e of entries) assert.ok(e.length <= 255);
      assert.equal(rockRidge(entries).symlink?.toString(), target, target);
    }
  });

  test("SL entries end inside a CONTINUE component, so libarchive (no '/' between entries) reads the same target", () => {
    const target = `/${Array.from({ length: 14 }, (_, i) => `component-${i}-of-a-very-long-symlink-target`).join("/")}/end`;
    const entries = encodeSl(Buffer.from(target));
    assert.ok(entries.length > 2);
    for (const e of entries.slice(0, -1)) {
      // Walk the components: the last one of a continued entry must be flagged CONTINUE (1).
      let o = 5;
      let lastFlags = -1;
      while (o + 2 <= e.length) {
        lastFlags = e[o];
        o += 2 + e[o + 1];
      }
      assert.equal(lastFlags & 1, 1);
    }
  });

  test("continuation areas never cross a block and chain when one block is not enough", async () => {
    const areas = new ContinuationAreas(100);
    const big = Array.from({ length: 12 }, (_, i) => encodeSuspEntry("NM", Buffer.alloc(240, 65 + i)));
    const ce = areas.place(big) as Buffer;
    assert.equal(areas.blocks.length, 2);
    const image = Buffer.alloc(102 * SECTOR_SIZE);
    Buffer.concat(areas.blocks).copy(image, 100 * SECTOR_SIZE);
    const entries = await readSuspArea(new MemorySource(image), ce, 0, "test");
    assert.deepEqual(entries.map((e) => e.data[0]), big.map((_, i) => 65 + i));
  });

  test("El Torito catalogue: validation checksum, default entry, UEFI section; boot info checksum", () => {
    const catalog = {
      platform: PLATFORM_X86,
      idString: "",
      entries: [
        { platform: PLATFORM_X86, bootable: true, mediaType: 0, loadSegment: 0, systemType: 0, sectorCount: 4, loadRba: 40 },
        { platform: PLATFORM_EFI, bootable: true, mediaType: 0, loadSegment: 0, systemType: 0, sectorCount: 2880, loadRba: 41, selectionCriteria: Buffer.alloc(20) },
      ],
    };
    const buf = encodeBootCatalog(catalog);
    assert.equal(buf[0x40], 0x91);
    assert.deepEqual(decodeBootCatalog(buf), catalog);
    const bad = Buffer.from(buf);
    bad[5] ^= 1;
    assert.throws(() => decodeBootCatalog(bad), /checksum/);
    const sum = new BootInfoChecksum();
    sum.update(Buffer.from([1, 0, 0, 0, 2]));
    sum.update(Buffer.from([0, 0, 0, 3]));
    assert.equal(sum.digest(), 1 + 2 + 3); // words 1 and 2, then a zero-padded last word 3
  });
});

describe("ISO 9660 codecs against an xorriso-made image (decode, encode, same bytes)", { skip: needs("xorriso") }, () => {
  test("primary and Joliet volume descriptors, path tables, directory records and SUSP entries", async () => {
    const src = await openSource(await referenceIso("xorriso"));
    try {
      for (const sector of [16, 17]) {
        const raw = await src.read(sector * SECTOR_SIZE, SECTOR_SIZE);
        assert.ok(encodePrimaryVolumeDescriptor(decodePrimaryVolumeDescriptor(raw)).equals(raw), `sector ${sector}`);
      }
      const pvd = decodePrimaryVolumeDescriptor(await src.read(16 * SECTOR_SIZE, SECTOR_SIZE));
      for (const [order, block] of [["L", pvd.typeLPathTable], ["M", pvd.typeMPathTable]] as const) {
        const raw = await src.read(block * SECTOR_SIZE, pvd.pathTableSize);
        assert.ok(encodePathTable(decodePathTable(raw, order), order).equals(raw));
      }
      const root = await src.read(pvd.root.extent * SECTOR_SIZE, SECTOR_SIZE);
      let records = 0;
      for (let o = 0; root[o] !== 0; o += root[o]) {
        const raw = root.subarray(o, o + root[o]);
        const record = decodeDirectoryRecord(root, o);
        assert.ok(encodeDirectoryRecord(record).equals(raw), `record at ${o}`);
        const entries = decodeSuspEntries(record.systemUse);
        const reencoded = Buffer.concat(entries.map((e) => encodeSuspEntry(e.signature, e.data, e.version)));
        assert.ok(record.systemUse.subarray(0, reencoded.length).equals(reencoded));
        records++;
      }
      assert.ok(records > 5);
    } finally {
      await src.close();
    }
  });
});
