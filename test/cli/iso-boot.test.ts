import assert from "node:assert/strict";
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { before, describe, test } from "node:test";
import { needs } from "../helpers/env.js";
import { platter, run, sh } from "../helpers/run.js";
import { tempDir } from "../helpers/tmp.js";

/** A stand-in BIOS boot image: 3000 bytes that are not all alike (the boot info checksum covers them). */
function biosImage(): Buffer {
  return Buffer.from(Array.from({ length: 3000 }, (_, i) => (i * 131 + (i >> 7)) & 0xff));
}

async function report(iso: string): Promise<string[]> {
  const r = await run("xorriso", ["-indev", iso, "-report_el_torito", "plain"]);
  return r.stdout.split("\n").filter((l) => l.startsWith("El Torito"));
}

describe("platter iso --bios-boot / --efi-boot (El Torito)", { skip: needs("xorriso", "mkfs.vfat", "mcopy", "isoinfo") }, () => {
  const dir = tempDir();
  const src = join(dir, "src");
  const efi = join(src, "EFI", "efiboot.img");
  const bios = join(src, "boot", "loader.bin");
  before(async () => {
    mkdirSync(join(src, "boot"), { recursive: true });
    mkdirSync(join(src, "EFI"), { recursive: true });
    writeFileSync(bios, biosImage());
    writeFileSync(join(dir, "BOOTX64.EFI"), "not really an EFI program\n");
    await sh(`truncate -s 1440K ${efi} && mkfs.vfat -n ESP ${efi} >/dev/null && mmd -i ${efi} ::/EFI ::/EFI/BOOT && mcopy -i ${efi} ${dir}/BOOTX64.EFI ::/EFI/BOOT/`);
  });

  test("a BIOS and a UEFI entry, as xorriso -report_el_torito reports them, with the boot info table xorriso recognises", async () => {
    const iso = join(dir, "boot.iso");
    const r = await platter(["iso", src, "-o", iso, "--bios-boot", bios, "--efi-boot", efi]);
    assert.equal(r.code, 0, r.stderr);
    const lines = await report(iso);
    const img = (n: number) => lines.find((l) => l.startsWith("El Torito boot img :") && l.split(/\s+/)[5] === String(n));
    assert.match(img(1) ?? "", /^El Torito boot img :\s+1\s+BIOS\s+y\s+none\s+0x0000\s+0x00\s+4\s+\d+$/);
    assert.match(img(2) ?? "", /^El Torito boot img :\s+2\s+UEFI\s+y\s+none\s+0x0000\s+0x00\s+2880\s+\d+$/);
    // The entries point at the tree's own files, and the BIOS one carries a valid boot info table.
    assert.ok(lines.includes("El Torito img path :   1  /boot/loader.bin"), lines.join("\n"));
    assert.ok(lines.includes("El Torito img path :   2  /EFI/efiboot.img"), lines.join("\n"));
    assert.match(lines.find((l) => l.startsWith("El Torito img opts :   1")) ?? "", /boot-info-table/);
    const isoinfo = (await run("isoinfo", ["-d", "-i", iso])).stdout;
    assert.match(isoinfo, /El Torito VD version 1 found, boot catalog is in sector \d+/);
  });

  test("the boot info table is the one xorriso -boot-info-table writes (same checksum and length)", async () => {
    const ours = join(dir, "ours.iso");
    const theirs = join(dir, "theirs.iso");
    await platter(["iso", src, "-o", ours, "--bios-boot", bios]);
    await run("xorriso", ["-as", "mkisofs", "-quiet", "-R", "-J", "-b", "boot/loader.bin", "-no-emul-boot", "-boot-load-size", "4", "-boot-info-table", "-o", theirs, src]);
    const table = async (iso: string) => {
      const lba = Number((await report(iso)).find((l) => l.startsWith("El Torito boot img :   1"))?.split(/\s+/).pop());
      const bytes = readFileSync(iso).subarray(lba * 2048, lba * 2048 + 64);
      return { lba, pvd: bytes.readUInt32LE(8), file: bytes.readUInt32LE(12), length: bytes.readUInt32LE(16), checksum: bytes.readUInt32LE(20), rest: bytes.subarray(24, 64) };
    };
    const a = await table(ours);
    const b = await table(theirs);
    assert.equal(a.file, a.lba);
    assert.deepEqual({ ...a, lba: 0, file: 0 }, { ...b, lba: 0, file: 0 });
    assert.equal(a.length, 3000);
  });

  test("a boot image outside the source folders is stored but not listed; info --json shows the entries", async () => {
    const outside = join(dir, "outside.bin");
    writeFileSync(outside, biosImage());
    const iso = join(dir, "outside.iso");
    const r = await platter(["iso", join(src, "boot"), "-o", iso, "--bios-boot", outside, "--boot-load-size", "6"]);
    assert.equal(r.code, 0, r.stderr);
    const info = JSON.parse((await platter(["info", iso, "--json"])).stdout);
    assert.equal(info.filesystem, "iso9660");
    assert.equal(info.iso9660.bootCatalog.entries.length, 1);
    const entry = info.iso9660.bootCatalog.entries[0];
    assert.deepEqual([entry.platform, entry.emulation, entry.loadSectors, entry.bootable], ["x86", "none", 6, true]);
    const image = readFileSync(iso);
    assert.ok(image.subarray(entry.imageOffset + 64, entry.imageOffset + 3000).equals(biosImage().subarray(64)));
    const listing = (await run("isoinfo", ["-R", "-f", "-i", iso])).stdout.trim().split("\n");
    assert.deepEqual(listing, ["/loader.bin"]);
  });

  test("a missing boot image is a usage error and no image is written", async () => {
    const iso = join(dir, "none.iso");
    const r = await platter(["iso", src, "-o", iso, "--bios-boot", join(dir, "missing.bin")]);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /^platter: BIOS boot image .*missing\.bin: no such file or directory\n$/);
    assert.equal(existsSync(iso), false);
  });
});
