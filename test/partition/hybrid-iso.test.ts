import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, test } from "node:test";
import { openSource } from "../../src/io/file-source.js";
import { choosePartition } from "../../src/image/partition-choice.js";
import type { PartitionReport } from "../../src/image/partition-report.js";
import { needs } from "../helpers/env.js";
import { fixture } from "../helpers/fixtures.js";
import { platter } from "../helpers/run.js";
import { assertMatchesSfdisk, type SfdiskTable } from "../helpers/sfdisk.js";

describe("hybrid ISOs (an MBR, sometimes a GPT, inside an ISO 9660 image): parts agrees with sfdisk --json", { skip: needs("xorriso", "genisoimage", "isohybrid", "sfdisk") }, async () => {
  const dir = await fixture("make-hybrid-isos.sh", "hybrid-isos");
  const cases: Array<[string, string]> = [
    ["isohybrid-mbr.iso", "xorriso -isohybrid-mbr: partition 1 (type 17) starts at sector 0 and is the ISO"],
    ["isohybrid.iso", "syslinux isohybrid on a genisoimage ISO"],
    ["gpt-basdat.iso", "xorriso -isohybrid-gpt-basdat: an MBR without a protective entry, so sfdisk (and platter) list the MBR"],
    ["appended.iso", "xorriso -append_partition: the EFI image is partition 2, after the ISO"],
    ["offset.iso", "xorriso -partition_offset 16: partition 1 is a second view of the ISO"],
  ];
  for (const [name, what] of cases) {
    test(`${name} (${what})`, async () => {
      const iso = join(dir, name);
      const r = await platter(["parts", iso, "--json"]);
      assert.equal(r.code, 0, r.stderr);
      const report = JSON.parse(r.stdout) as PartitionReport;
      const sfdisk = (JSON.parse(readFileSync(`${iso}.sfdisk.json`, "utf8")) as { partitiontable: SfdiskTable }).partitiontable;
      assertMatchesSfdisk(report, sfdisk);
      assert.deepEqual([report.filesystem, report.label], ["iso9660", "HYBRID"], "the whole image is the ISO");
      assert.ok(!report.warnings.some((w) => /overlap/.test(w)), report.warnings.join("\n"));
      const efi = report.partitions.find((p) => p.type === "ef");
      if (efi) assert.deepEqual([efi.filesystem, efi.label], ["vfat", "EFIBOOT"]);
      // Without --part, commands use the whole ISO, not one of its partitions.
      const source = await openSource(iso);
      try {
        const choice = await choosePartition(source);
        assert.equal(choice.partition, null);
        assert.equal(choice.probe?.filesystem, "iso9660");
      } finally {
        await source.close();
      }
    });
  }
});
