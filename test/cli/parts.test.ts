import assert from "node:assert/strict";
import { copyFileSync } from "node:fs";
import { join } from "node:path";
import { describe, test } from "node:test";
import type { PartitionReport } from "../../src/image/partition-report.js";
import { blkid, expectedProbe } from "../helpers/blkid.js";
import { needs } from "../helpers/env.js";
import { fixture } from "../helpers/fixtures.js";
import { platter, sh } from "../helpers/run.js";
import { assertMatchesSfdisk, sfdiskJson } from "../helpers/sfdisk.js";
import { tempDir } from "../helpers/tmp.js";

async function partsJson(image: string): Promise<PartitionReport> {
  const r = await platter(["parts", image, "--json"]);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stderr, "", "--json prints nothing else");
  return JSON.parse(r.stdout) as PartitionReport;
}

describe("platter parts", () => {
  for (const [script, name] of [
    ["make-mbr-image.sh", "mbr.img"],
    ["make-gpt-image.sh", "gpt.img"],
  ]) {
    test(`parts --json on ${name}: the table as sfdisk --json, filesystem/label/UUID as blkid on each partition`, { skip: needs("sfdisk", "blkid") }, async () => {
      const img = await fixture(script, name);
      const report = await partsJson(img);
      assertMatchesSfdisk(report, await sfdiskJson(img));
      for (const p of report.partitions.filter((x) => !x.container)) {
        const expected = expectedProbe(await blkid(img, { offset: p.offset, length: p.length }));
        assert.deepEqual([p.filesystem, p.label, p.fsUuid], [expected?.filesystem, expected?.label, expected?.uuid], `partition ${p.number}`);
      }
      assert.equal(report.filesystem, null);
    });
  }

  test("parts on the example disk: the fdisk-like table", async () => {
    const r = await platter(["parts", "examples/disk.img"]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(
      r.stdout,
      [
        "examples/disk.img: 4 MiB, 4194304 bytes, 8192 sectors of 512 bytes",
        "MBR (dos) partition table, disk identifier 0x0e5a3b1e",
        "",
        "#  Boot  Start   End  Sectors   Size   Offset  Id  Type   Filesystem  Label",
        "1  *      2048  4095     2048  1 MiB  1048576   1  FAT12  vfat        EXAMPLE",
        "2         4096  8191     4096  2 MiB  2097152  83  Linux  ext4        rootfs",
        "",
      ].join("\n"),
    );
  });

  test("MBR: each partition's Id and Type columns read as sfdisk -l prints them (83 Linux, c W95 FAT32 (LBA), ee GPT, 5 Extended, 82)", { skip: needs("sfdisk") }, async () => {
    const crafted = join(tempDir(), "types.img");
    await sh(`truncate -s 8M ${crafted}`);
    const layout = ["start=2048,size=2048,type=83", "start=4096,size=2048,type=c", "start=6144,size=4096,type=ee", "start=10240,size=6144,type=5", "start=12288,size=2048,type=82"];
    await sh(`sfdisk -q ${crafted}`, { input: `label: dos\n${layout.join("\n")}\n` });
    for (const img of [crafted, await fixture("make-mbr-image.sh", "mbr.img")]) {
      // sfdisk -l: "Device Boot Start End Sectors Size Id Type", the device named IMAGE<number>.
      const sfdisk = (await sh(`sfdisk -l ${img}`))
        .split("\n")
        .map((line) => /^\S*?(\d+)\s+\*?\s+\d+\s+\d+\s+\d+\s+\S+\s+([0-9a-f]+) (.+)$/.exec(line))
        .filter((m) => m !== null)
        .map((m) => [Number(m[1]), m[2], m[3]]);
      const r = await platter(["parts", img]);
      assert.equal(r.code, 0, r.stderr);
      const lines = r.stdout.split("\n");
      const first = lines.findIndex((l) => l.startsWith("#  Boot"));
      const header = lines[first] as string;
      const [offsetEnd, idEnd, typeStart, fsStart] = [header.indexOf("Offset") + 6, header.indexOf(" Id ") + 3, header.indexOf(" Type ") + 1, header.indexOf(" Filesystem") + 1];
      const ours = lines
        .slice(first + 1)
        .filter((l) => l !== "")
        .map((l) => [Number.parseInt(l, 10), l.slice(offsetEnd, idEnd).trim(), l.slice(typeStart, fsStart).trim()]);
      assert.deepEqual(ours, sfdisk, img);
    }
  });

  test("parts on a block device (a loop device of the MBR disk) says what it says on the file", { skip: needs("root", "loop", "losetup") }, async () => {
    const img = await fixture("make-mbr-image.sh", "mbr.img");
    const loop = (await sh(`losetup -f --show -r ${img}`)).trim();
    try {
      const onDevice = await partsJson(loop);
      const onFile = await partsJson(img);
      assert.deepEqual(onDevice, onFile);
    } finally {
      await sh(`losetup -d ${loop}`);
    }
  });

  test("warnings: on stderr as 'platter: warning: ...' in text mode, in the JSON with --json", { skip: needs("sfdisk") }, async () => {
    const img = join(tempDir(), "short.img");
    copyFileSync(await fixture("make-mbr-image.sh", "mbr.img"), img);
    await sh(`truncate -s 60M ${img}`);
    const text = await platter(["parts", img]);
    assert.equal(text.code, 0);
    assert.match(text.stderr, /^platter: warning: partition 2 \(sectors 34816-131071\) extends past the end of the image/m);
    const report = await partsJson(img);
    assert.ok(report.warnings.some((w) => /partition 6 .* extends past the end/.test(w)));
  });

  test("an image without a table: scheme none, the whole image's filesystem", { skip: needs("mkfs.ext4") }, async () => {
    const img = join(tempDir(), "plain.img");
    await sh(`truncate -s 4M ${img} && mkfs.ext4 -q -L plain ${img}`);
    const report = await partsJson(img);
    assert.equal(report.scheme, "none");
    assert.deepEqual([report.filesystem, report.label], ["ext4", "plain"]);
    assert.match((await platter(["parts", img])).stdout, /no partition table: the whole image is ext4 "plain"/);
  });

  test("bad input: one line on stderr and exit 1, never a stack trace", { skip: needs("sgdisk") }, async () => {
    const missing = await platter(["parts", "/nonexistent/disk.img"]);
    assert.equal(missing.code, 1);
    assert.equal(missing.stderr, "platter: /nonexistent/disk.img: no such file or directory\n");
    const img = join(tempDir(), "broken.img");
    copyFileSync(await fixture("make-gpt-image.sh", "gpt.img"), img);
    await sh(`printf 'XX' | dd of=${img} bs=1 seek=520 conv=notrunc status=none; printf 'XX' | dd of=${img} bs=1 seek=$((196607*512+8)) conv=notrunc status=none`);
    const broken = await platter(["parts", img]);
    assert.equal(broken.code, 1);
    assert.match(broken.stderr, /^platter: .*both GPTs are unusable.*\n$/);
    assert.equal(broken.stderr.split("\n").length, 2);
    const usage = await platter(["parts"]);
    assert.equal(usage.code, 2);
  });
});
