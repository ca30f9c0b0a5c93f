import assert from "node:assert/strict";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { before, describe, test } from "node:test";
import { needs } from "../helpers/env.js";
import { platter, run, sh } from "../helpers/run.js";
import { tempDir } from "../helpers/tmp.js";

const ISOHDPFX = "/usr/lib/ISOLINUX/isohdpfx.bin";
const EPOCH = { SOURCE_DATE_EPOCH: "1700000000" };

describe("platter iso --hybrid (GPT + protective MBR, the EFI image as ESP)", { skip: needs("sgdisk", "sfdisk", "xorriso", "mkfs.vfat", "mcopy", "fsck.vfat") }, () => {
  const dir = tempDir();
  const src = join(dir, "src");
  const efi = join(src, "EFI", "efiboot.img");
  const bios = join(src, "boot", "loader.bin");
  const iso = join(dir, "hybrid.iso");
  before(async () => {
    mkdirSync(join(src, "boot"), { recursive: true });
    mkdirSync(join(src, "EFI"), { recursive: true });
    writeFileSync(bios, Buffer.from(Array.from({ length: 2048 }, (_, i) => i & 0xff)));
    writeFileSync(join(src, "readme.txt"), "hybrid\n");
    writeFileSync(join(dir, "BOOTX64.EFI"), "not really an EFI program\n");
    await sh(`truncate -s 2M ${efi} && mkfs.vfat -n ESP ${efi} >/dev/null && mmd -i ${efi} ::/EFI ::/EFI/BOOT && mcopy -i ${efi} ${dir}/BOOTX64.EFI ::/EFI/BOOT/`);
    const r = await platter(["iso", src, "-o", iso, "--bios-boot", bios, "--efi-boot", efi, "--hybrid"], { env: EPOCH });
    assert.equal(r.code, 0, r.stderr);
  });

  test("sgdisk -v finds no problems and sfdisk --json shows the ISO and EFI partitions", async () => {
    const v = await run("sgdisk", ["-v", iso]);
    assert.match(v.stdout, /No problems found/, v.stdout);
    const table = JSON.parse((await run("sfdisk", ["--json", iso])).stdout).partitiontable;
    assert.equal(table.label, "gpt");
    const parts = table.partitions.map((p: { start: number; size: number; type: string; name: string }) => [p.start, p.type, p.name]);
    assert.deepEqual(parts[0], [64, "EBD0A0A2-B9E5-4433-87C0-68B6B72699C7", "ISO9660"]);
    assert.deepEqual(parts[1].slice(1), ["C12A7328-F81F-11D2-BA4B-00A0C93EC93B", "EFI System"]);
    assert.equal(table.partitions[1].size, 4096);
    assert.equal(readFileSync(iso).length % (1 << 20), 0, "image not a whole number of MiB");
  });

  test("the ESP partition is the EFI image: fsck.vfat is clean and mdir finds EFI/BOOT/BOOTX64.EFI", async () => {
    const table = JSON.parse((await run("sfdisk", ["--json", iso])).stdout).partitiontable;
    const offset = table.partitions[1].start * 512;
    const esp = join(dir, "esp.img");
    writeFileSync(esp, readFileSync(iso).subarray(offset, offset + table.partitions[1].size * 512));
    assert.ok(readFileSync(esp).equals(readFileSync(efi)));
    const fsck = await run("fsck.vfat", ["-n", esp]);
    assert.equal(fsck.code, 0, fsck.stdout + fsck.stderr);
    const mdir = await run("mdir", ["-b", "-i", `${iso}@@${offset}`, "::/EFI/BOOT"], { env: { MTOOLS_SKIP_CHECK: "1" } });
    assert.match(mdir.stdout, /BOOTX64\.EFI/);
  });

  test("xorriso -report_system_area sees the MBR and GPT; -report_el_torito still sees both boot entries", async () => {
    const r = (await run("xorriso", ["-indev", iso, "-report_system_area", "plain", "-report_el_torito", "plain"])).stdout;
    assert.match(r, /^MBR partition +: +1 +0x00 +0xee +1 +\d+$/m);
    assert.match(r, /^GPT partname local :   1  ISO9660$/m);
    assert.match(r, /^GPT partition path :   2  \/EFI\/efiboot\.img$/m);
    assert.match(r, /^El Torito boot img :\s+1\s+BIOS\s+y\s+none/m);
    assert.match(r, /^El Torito boot img :\s+2\s+UEFI\s+y\s+none/m);
  });

  test("platter parts lists the two partitions; bsdtar still reads the ISO", { skip: needs("bsdtar") }, async () => {
    const parts = JSON.parse((await platter(["parts", iso, "--json"])).stdout);
    assert.equal(parts.scheme, "gpt");
    assert.deepEqual(
      parts.partitions.map((p: { number: number; name: string; filesystem: string | null }) => [p.number, p.name, p.filesystem]),
      [[1, "ISO9660", null], [2, "EFI System", "vfat"]],
    );
    const listing = (await run("bsdtar", ["-tf", iso])).stdout;
    assert.match(listing, /readme\.txt/);
  });

  test("two hybrid builds with SOURCE_DATE_EPOCH are byte-identical (GUIDs derive from the image)", async () => {
    const again = join(dir, "again.iso");
    await platter(["iso", src, "-o", again, "--bios-boot", bios, "--efi-boot", efi, "--hybrid"], { env: EPOCH });
    assert.equal((await run("cmp", [iso, again])).code, 0);
  });

  test("--hybrid-mbr: isolinux's boot code with the BIOS image's LBA at byte 432, as xorriso -isohybrid-mbr writes it", { skip: needs(ISOHDPFX) }, async () => {
    // xorriso calls the MBR "isohybrid" only when the BIOS image is isolinux itself.
    const isolinuxSrc = join(dir, "isolinux-src");
    mkdirSync(join(isolinuxSrc, "isolinux"), { recursive: true });
    const isolinux = join(isolinuxSrc, "isolinux", "isolinux.bin");
    writeFileSync(isolinux, readFileSync(join(ISOHDPFX, "..", "isolinux.bin")));
    const out = join(dir, "mbr.iso");
    const r = await platter(["iso", isolinuxSrc, "-o", out, "--bios-boot", isolinux, "--efi-boot", efi, "--hybrid", "--hybrid-mbr", ISOHDPFX]);
    assert.equal(r.code, 0, r.stderr);
    const image = readFileSync(out);
    assert.ok(image.subarray(0, 432).equals(readFileSync(ISOHDPFX).subarray(0, 432)));
    const report = (await run("xorriso", ["-indev", out, "-report_system_area", "plain", "-report_el_torito", "plain"])).stdout;
    assert.match(report, /^System area summary: MBR isohybrid/m);
    const lba = Number(/^El Torito boot img :\s+1\s+BIOS.*\s(\d+)$/m.exec(report)?.[1]);
    assert.equal(image.readBigUInt64LE(432), BigInt(lba * 4));
    assert.match(report, /^MBR partition +: +1 +0x80 +0xee/m);
    assert.match((await run("sgdisk", ["-v", out])).stdout, /No problems found/);
  });

  test("--hybrid-mbr without --bios-boot is a usage error", async () => {
    const r = await platter(["iso", src, "-o", join(dir, "x.iso"), "--hybrid", "--hybrid-mbr", "/dev/null"]);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /--hybrid-mbr needs --bios-boot/);
  });
});
