/**
 * platter convert --to vhd|vhdx|vmdk, judged by qemu: `qemu-img check`
 * clean (vhdx, vmdk; qemu has no check for vpc), `qemu-img compare`
 * identical to the source, `qemu-img info` agreeing on the virtual size —
 * for a VHD the exact size, where qemu-img's own vpc rounds it to a CHS
 * geometry — and all-zero blocks left unallocated (`qemu-img map`).
 */
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { closeSync, openSync, statSync, writeSync } from "node:fs";
import { join } from "node:path";
import { before, describe, test } from "node:test";
import { vhdWriter } from "../../src/container/vhd/index.js";
import { vhdxWriter } from "../../src/container/vhdx/index.js";
import { vmdkWriter } from "../../src/container/vmdk/index.js";
import { UsageError } from "../../src/errors.js";
import { MemorySource } from "../../src/io/memory-source.js";
import { needs } from "../helpers/env.js";
import { fixture } from "../helpers/fixtures.js";
import { platter, run } from "../helpers/run.js";
import { tempDir } from "../helpers/tmp.js";
import { sha256Of } from "./qcow2-helpers.js";
import { openVdisk } from "./vdisk-helpers.js";

const MiB = 1 << 20;
/** qemu-img's -f / -F name of each format. */
const QEMU_FORMAT: Record<string, string> = { vhd: "vpc", vhdx: "vhdx", vmdk: "vmdk" };

async function qemu(args: string[]): Promise<string> {
  const r = await run("qemu-img", args);
  assert.equal(r.code, 0, `qemu-img ${args.join(" ")}: ${r.stdout}${r.stderr}`);
  return r.stdout;
}

async function convert(source: string, dest: string, extra: string[] = []): Promise<void> {
  const r = await platter(["convert", "-q", source, dest, ...extra]);
  assert.equal(r.code, 0, r.stderr);
}

/** qemu-img check (where qemu has one), compare with the raw source, and info's virtual size. */
async function judgedByQemu(raw: string, image: string, format: string): Promise<number> {
  const f = QEMU_FORMAT[format];
  if (f !== "vpc") assert.match(await qemu(["check", "-f", f, image]), /No errors were found on the image/);
  assert.match(await qemu(["compare", "-f", "raw", "-F", f, raw, image]), /Images are identical/);
  return JSON.parse(await qemu(["info", "-f", f, "--output=json", image]))["virtual-size"];
}

/** Bytes qemu-img map says hold data. */
async function mappedData(image: string, format: string): Promise<number> {
  const map = JSON.parse(await qemu(["map", "-f", QEMU_FORMAT[format], "--output=json", image])) as Array<{ length: number; data: boolean }>;
  return map.filter((e) => e.data).reduce((n, e) => n + e.length, 0);
}

describe("convert --to vhd, vhdx, vmdk: qemu reads what platter wrote", { skip: needs("qemu-img", "sfdisk", "mkfs.ext4", "mkfs.vfat", "mcopy") }, () => {
  const work = tempDir();
  let disk = "";
  /** 10 MiB + 5 KiB, random bytes at both ends: a size no geometry and no block size divides. */
  const odd = join(work, "odd.img");
  const oddSize = 10 * MiB + 5 * 1024;
  before(async () => {
    disk = await fixture("make-mbr-image.sh", "mbr.img");
    const fd = openSync(odd, "w");
    writeSync(fd, randomBytes(300 * 1024), 0, 300 * 1024, 0);
    writeSync(fd, randomBytes(5 * 1024), 0, 5 * 1024, 10 * MiB);
    closeSync(fd);
  });

  for (const [format, extra] of [
    ["vhd", []],
    ["vhd", ["--vhd-type", "fixed"]],
    ["vhdx", []],
    ["vmdk", []],
  ] as Array<[string, string[]]>) {
    const label = [format, ...extra].join(" ");
    test(`${label}: the MBR disk and an odd-sized one, identical for qemu-img compare, clean for qemu-img check, the size exact`, async () => {
      for (const [source, size] of [
        [disk, 64 * MiB],
        [odd, oddSize],
      ] as Array<[string, number]>) {
        const dest = join(work, `out.${format}`);
        await convert(source, dest, ["--force", ...extra]);
        assert.equal(await judgedByQemu(source, dest, format), size, `${label} of ${source}: virtual size`);
        // And platter reads back what it wrote.
        const image = await openVdisk(dest);
        try {
          assert.equal(image.source.size, size);
          assert.deepEqual(image.layers.map((l) => l.format), [format]);
        } finally {
          await image.close();
        }
      }
    });
  }

  test("vhd: platter keeps the exact size (qemu-img info -f vpc agrees); qemu-img's vpc rounds it to a geometry; --vhd-align 1MiB rounds up", async () => {
    const ours = join(work, "exact.vhd");
    await convert(odd, ours, ["--force"]);
    const info = JSON.parse(await qemu(["info", "-f", "vpc", "--output=json", ours]));
    assert.equal(info["virtual-size"], oddSize);
    const theirs = join(work, "qemu.vhd");
    await qemu(["convert", "-f", "raw", "-O", "vpc", odd, theirs]);
    assert.notEqual(JSON.parse(await qemu(["info", "-f", "vpc", "--output=json", theirs]))["virtual-size"], oddSize);

    const aligned = join(work, "aligned.vhd");
    await convert(odd, aligned, ["--force", "--vhd-align", "1MiB"]);
    assert.equal(JSON.parse(await qemu(["info", "-f", "vpc", "--output=json", aligned]))["virtual-size"], 11 * MiB);
    // The padding reads as zeros after the source's bytes.
    const image = await openVdisk(aligned);
    try {
      assert.ok((await image.source.read(oddSize, 11 * MiB - oddSize)).every((b) => b === 0));
    } finally {
      await image.close();
    }
    const fixed = join(work, "aligned-fixed.vhd");
    await convert(odd, fixed, ["--force", "--vhd-align", "1MiB", "--vhd-type", "fixed"]);
    assert.equal(statSync(fixed).size, 11 * MiB + 512, "a fixed VHD: the disk, then the 512-byte footer");

    const bad = await platter(["convert", odd, join(work, "bad.vhd"), "--vhd-align", "1000"]);
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /^platter: VHD alignment must be a positive multiple of 512 bytes, not 1000\n$/);
  });

  test("all-zero blocks stay unallocated in every format", async () => {
    const zeros = join(work, "zeros.img");
    await run("truncate", ["-s", "64M", zeros]);
    for (const format of ["vhd", "vhdx", "vmdk"]) {
      const dest = join(work, `zeros.${format}`);
      await convert(zeros, dest, ["--force"]);
      assert.equal(await judgedByQemu(zeros, dest, format), 64 * MiB);
      // qemu's vhdx driver reports no block status (map calls it all data): the file's size tells there.
      if (format !== "vhdx") assert.equal(await mappedData(dest, format), 0, format);
      assert.ok(statSync(dest).size <= 4 * MiB, `${format}: ${statSync(dest).size} bytes for an empty disk`);
    }
  });

  test("a disk past 4 GiB: VHDX BAT entries past the first chunk (a sector bitmap entry between), VMDK grain tables spread out", async () => {
    const size = 4160 * MiB;
    const big = join(work, "big.img");
    await run("truncate", ["-s", `${size}`, big]);
    // A pattern byte per place, so qemu-io can check each without reading 4 GiB.
    const places: Array<[number, number]> = [
      [0, 0x11],
      [2048 * MiB - 4096, 0x22],
      [4096 * MiB + MiB, 0x33],
      [size - 4096, 0x44],
    ];
    const fd = openSync(big, "r+");
    for (const [at, pattern] of places) writeSync(fd, Buffer.alloc(4096, pattern), 0, 4096, at);
    closeSync(fd);
    for (const format of ["vhdx", "vmdk"]) {
      const dest = join(work, `big.${format}`);
      await convert(big, dest, ["--force"]);
      const f = QEMU_FORMAT[format];
      assert.match(await qemu(["check", "-f", f, dest]), /No errors were found on the image/);
      assert.equal(JSON.parse(await qemu(["info", "-f", f, "--output=json", dest]))["virtual-size"], size);
      const reads = places.flatMap(([at, pattern]) => [
        ["-c", `read -P ${pattern} ${at} 4096`],
        ...(at >= MiB ? [["-c", `read -P 0 ${at - MiB} ${MiB}`]] : []),
        ...(at + 4096 + MiB <= size ? [["-c", `read -P 0 ${at + 4096} ${MiB}`]] : []),
      ]);
      const r = await run("qemu-io", ["-r", "-f", f, ...reads.flat(), dest]);
      assert.equal(r.code, 0, r.stderr);
      assert.doesNotMatch(r.stdout, /Pattern verification failed/, `${format}: ${r.stdout}`);
      assert.ok(statSync(dest).size < 200 * MiB, `${format}: ${statSync(dest).size} bytes`);
    }
  });
});

describe("the VHD and VHDX sinks (random access)", () => {
  test("zeros written over data already written make it zeros again; in any order", async () => {
    const dir = tempDir();
    for (const [writer, options] of [
      [vhdWriter, {}],
      [vhdWriter, { vhdType: "fixed" }],
      [vhdxWriter, {}],
    ] as const) {
      const path = join(dir, `over.${writer.name}`);
      const size = 8 * MiB;
      const sink = await writer.create(path, { size, ...options });
      assert.equal(sink.sequential, false);
      const expected = Buffer.alloc(size);
      const data = randomBytes(3 * MiB);
      await sink.write(5 * MiB, data);
      await sink.write(MiB, data);
      await sink.writeZeros(MiB + 4096, 8192);
      await sink.writeZeros(6 * MiB, MiB);
      await sink.writeZeros(0, MiB);
      data.copy(expected, 5 * MiB);
      data.copy(expected, MiB);
      expected.fill(0, MiB + 4096, MiB + 4096 + 8192);
      expected.fill(0, 6 * MiB, 7 * MiB);
      await sink.flush();
      await sink.close();
      const image = await openVdisk(path);
      try {
        assert.equal(await sha256Of(image.source), await sha256Of(new MemorySource(expected)), `${writer.name} ${JSON.stringify(options)}`);
      } finally {
        await image.close();
      }
    }
  });
});

describe("the streamOptimized VMDK sink", () => {
  test("is sequential: a write out of order is refused, and the stream must come whole", async () => {
    const dir = tempDir();
    const sink = await vmdkWriter.create(join(dir, "s.vmdk"), { size: 4 * MiB });
    assert.equal(sink.sequential, true);
    await sink.write(0, Buffer.alloc(MiB, 1));
    await assert.rejects(sink.write(2 * MiB, Buffer.alloc(MiB, 1)), (e: unknown) => e instanceof UsageError && /written in order; got byte 2097152, expected 1048576/.test(e.message));
    await sink.close().catch(() => {});

    const short = await vmdkWriter.create(join(dir, "short.vmdk"), { size: 4 * MiB });
    await short.write(0, Buffer.alloc(MiB, 1));
    await assert.rejects(short.flush(), /the VMDK stream ends at byte 1048576 of 4194304/);
    await short.close().catch(() => {});
  });

  test("zeros between data, in pieces that cut grains: the bytes come back", async () => {
    const dir = tempDir();
    const path = join(dir, "z.vmdk");
    const size = 3 * MiB + 1536;
    const sink = await vmdkWriter.create(path, { size });
    const expected = Buffer.alloc(size);
    let pos = 0;
    for (const [kind, length] of [["data", 1000], ["zeros", 200_000], ["data", 70_000], ["zeros", 65536], ["data", 512], ["zeros", size - 337048]] as Array<[string, number]>) {
      if (kind === "data") {
        const bytes = randomBytes(length);
        bytes.copy(expected, pos);
        await sink.write(pos, bytes);
      } else await sink.writeZeros(pos, length);
      pos += length;
    }
    assert.equal(pos, size);
    await sink.flush();
    await sink.close();
    const image = await openVdisk(path);
    try {
      assert.equal(await sha256Of(image.source), await sha256Of(new MemorySource(expected)));
    } finally {
      await image.close();
    }
  });
});
