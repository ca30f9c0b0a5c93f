/**
 * Virtual disks that lie: each crafted from an image qemu-img made, one
 * field changed. Tables pointing past the end, into metadata or at each
 * other, damaged checksums, chains that loop, huge sizes in tiny files —
 * each a CorruptImageError naming the format and the offset (one line, exit
 * 1 through the CLI), never a hang, never unbounded memory.
 */
import assert from "node:assert/strict";
import { readFileSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { before, describe, test } from "node:test";
import { decodeDynamicHeader } from "../../src/container/vhd/dynamic-header.js";
import { decodeVhdFooter, encodeVhdFooter, FOOTER_BYTES } from "../../src/container/vhd/footer.js";
import { encodeBatEntry, PayloadState } from "../../src/container/vhdx/bat.js";
import { HEADER_OFFSETS } from "../../src/container/vhdx/header.js";
import { decodeRegionTable, REGION_TABLE_OFFSETS } from "../../src/container/vhdx/region-table.js";
import { REGION } from "../../src/container/vhdx/guids.js";
import { CorruptImageError } from "../../src/errors.js";
import { needs } from "../helpers/env.js";
import { nodeWithPeak } from "../helpers/peak-rss.js";
import { CLI, platter, run } from "../helpers/run.js";
import { tempDir } from "../helpers/tmp.js";
import { sha256Of } from "./qcow2-helpers.js";
import { openVdisk, vdiskFixtures } from "./vdisk-helpers.js";

const MiB = 1 << 20;

describe("hostile virtual disks", { skip: needs("qemu-img", "qemu-io", "gcc") }, () => {
  let dir = "";
  const work = tempDir();
  before(async () => {
    ({ dir } = await vdiskFixtures());
  });

  /** A copy of fixture `name` with `edit` applied, at work/<as>. */
  function crafted(name: string, as: string, edit: (image: Buffer) => void): string {
    const image = readFileSync(join(dir, name));
    edit(image);
    const path = join(work, as);
    writeFileSync(path, image);
    return path;
  }

  /** Opening and reading all of `path` fails with a CorruptImageError matching `message`. */
  async function refused(path: string, message: RegExp): Promise<void> {
    await assert.rejects(
      (async () => {
        const image = await openVdisk(path);
        try {
          await sha256Of(image.source);
        } finally {
          await image.close();
        }
      })(),
      (err: unknown) => {
        assert.ok(err instanceof CorruptImageError, `${path}: ${String(err)}`);
        assert.match(err.message, message);
        return true;
      },
    );
  }

  describe("VHD", () => {
    /** The dynamic VHD's footer, header and the index of its first allocated BAT entry. */
    function layout(image: Buffer) {
      const footer = decodeVhdFooter(image.subarray(image.length - FOOTER_BYTES), "footer");
      const header = decodeDynamicHeader(image.subarray(footer.dataOffset ?? 0, (footer.dataOffset ?? 0) + 1024), "header");
      let first = 0;
      while (image.readUInt32BE(header.tableOffset + first * 4) === 0xffffffff) first++;
      return { footer, header, first, entryAt: (i: number) => header.tableOffset + i * 4 };
    }
    /** A dynamic VHD's footer and its copy at the start, edited and re-encoded (checksum right). */
    function rewriteFooters(image: Buffer, edit: (f: ReturnType<typeof decodeVhdFooter>) => void): void {
      const footer = decodeVhdFooter(image.subarray(image.length - FOOTER_BYTES), "footer");
      edit(footer);
      const bytes = encodeVhdFooter(footer);
      bytes.copy(image, 0);
      bytes.copy(image, image.length - FOOTER_BYTES);
    }

    test("a BAT entry past the end of the file", async () => {
      const path = crafted("vpc/dynamic.vhd", "past.vhd", (image) => {
        const { entryAt, first } = layout(image);
        image.writeUInt32BE(0x00ffffff, entryAt(first));
      });
      await refused(path, /past\.vhd: VHD BAT entry \d+ .*past the end of the file/);
    });

    test("a BAT entry pointing at the BAT itself", async () => {
      const path = crafted("vpc/dynamic.vhd", "into-bat.vhd", (image) => {
        const { header, entryAt, first } = layout(image);
        image.writeUInt32BE(header.tableOffset / 512, entryAt(first));
      });
      await refused(path, /into-bat\.vhd: VHD BAT entry \d+ .*the BAT/);
    });

    test("two BAT entries sharing a block", async () => {
      const path = crafted("vpc/dynamic.vhd", "shared.vhd", (image) => {
        const { entryAt, first } = layout(image);
        image.writeUInt32BE(image.readUInt32BE(entryAt(first)), entryAt(first + 1));
      });
      await refused(path, /shared\.vhd: VHD BAT entry 1 points at byte \d+, inside the block of VHD BAT entry 0/);
    });

    test("a 2 TB disk in a 14 MiB file whose BAT is far too short", async () => {
      const path = crafted("vpc/dynamic.vhd", "huge.vhd", (image) =>
        rewriteFooters(image, (f) => {
          f.currentSize = 2040 * 1024 ** 3;
        }),
      );
      await refused(path, /huge\.vhd: VHD dynamic disk header: the BAT has \d+ entries, too few for 2190433320960 bytes/);
    });

    test("a damaged footer at the end: the copy at the start is used, with a warning", async () => {
      const path = crafted("vpc/dynamic.vhd", "damaged-end.vhd", (image) => {
        image[image.length - FOOTER_BYTES + 20] ^= 0xff;
      });
      const warnings: string[] = [];
      const image = await openVdisk(path, warnings);
      try {
        assert.equal(await sha256Of(image.source), readFileSync(join(dir, "vpc/dynamic.vhd.sha256"), "utf8").trim());
      } finally {
        await image.close();
      }
      assert.equal(warnings.length, 1, warnings.join("\n"));
      assert.match(warnings[0], /damaged-end\.vhd/);
      assert.match(warnings[0], /footer/);
    });

    test("a fixed VHD's footer counts only with its checksum right and its size the file's: else the file is raw", async () => {
      const wrongSize = crafted("vpc/fixed.vhd", "wrong-size.vhd", (image) => {
        const footer = decodeVhdFooter(image.subarray(image.length - FOOTER_BYTES), "footer");
        encodeVhdFooter({ ...footer, currentSize: footer.currentSize - 512 }).copy(image, image.length - FOOTER_BYTES);
      });
      const badSum = crafted("vpc/fixed.vhd", "bad-sum.vhd", (image) => {
        image[image.length - FOOTER_BYTES + 64] ^= 0x01;
      });
      for (const path of [wrongSize, badSum]) {
        const image = await openVdisk(path);
        try {
          assert.deepEqual(image.layers, [], path);
          assert.equal(image.source.size, statSync(path).size);
        } finally {
          await image.close();
        }
      }
    });

    test("a differencing VHD whose parent locator names itself: the loop is refused", async () => {
      const path = crafted("vpc/dynamic.vhd", "self.vhd", (image) => {
        const { footer } = layout(image);
        const headerAt = footer.dataOffset ?? 0;
        rewriteFooters(image, (f) => {
          f.diskType = "differencing";
        });
        // The parent name field (UTF-16BE at byte 64 of the header), then its checksum fixed.
        const name = Buffer.from("self.vhd", "utf16le").swap16();
        name.copy(image, headerAt + 64);
        image.writeUInt32BE(0, headerAt + 36);
        let sum = 0;
        for (let i = 0; i < 1024; i++) sum += image[headerAt + i];
        image.writeUInt32BE(~sum >>> 0, headerAt + 36);
      });
      await refused(path, /the backing chain comes back to this image/);
    });
  });

  describe("VHDX", () => {
    function batOffset(image: Buffer): number {
      const regions = decodeRegionTable(image.subarray(REGION_TABLE_OFFSETS[0], REGION_TABLE_OFFSETS[0] + 65536));
      const bat = regions.find((r) => r.guid === REGION.bat);
      assert.ok(bat);
      return bat.fileOffset;
    }

    test("a BAT entry past the end of the file", async () => {
      const path = crafted("vhdx/block1m.vhdx", "past.vhdx", (image) => {
        encodeBatEntry({ state: PayloadState.fullyPresent, offset: 1024 * MiB }, image, batOffset(image));
      });
      await refused(path, /past\.vhdx: VHDX BAT entry 0 .*past the end of the file/);
    });

    test("a BAT entry pointing into the metadata region", async () => {
      const path = crafted("vhdx/block1m.vhdx", "into-meta.vhdx", (image) => {
        encodeBatEntry({ state: PayloadState.fullyPresent, offset: batOffset(image) }, image, batOffset(image));
      });
      await refused(path, /into-meta\.vhdx: VHDX BAT entry 0 /);
    });

    test("one header damaged: the other is read; both damaged: refused", async () => {
      const one = crafted("vhdx/block1m.vhdx", "one-header.vhdx", (image) => {
        image[HEADER_OFFSETS[1] + 100] ^= 0xff;
        image[HEADER_OFFSETS[0] + 100] ^= 0x00;
      });
      const image = await openVdisk(one);
      try {
        assert.equal(await sha256Of(image.source), readFileSync(join(dir, "vhdx/block1m.vhdx.sha256"), "utf8").trim());
      } finally {
        await image.close();
      }
      const both = crafted("vhdx/block1m.vhdx", "no-header.vhdx", (image) => {
        image[HEADER_OFFSETS[0] + 100] ^= 0xff;
        image[HEADER_OFFSETS[1] + 100] ^= 0xff;
      });
      await refused(both, /no-header\.vhdx: .*header/);
    });

    test("both region tables damaged", async () => {
      const path = crafted("vhdx/block1m.vhdx", "no-regions.vhdx", (image) => {
        for (const at of REGION_TABLE_OFFSETS) image[at + 20] ^= 0xff;
      });
      await refused(path, /no-regions\.vhdx: .*region table/);
    });
  });

  describe("VMDK", () => {
    test("a grain table entry past the end of the file", async () => {
      const path = crafted("vmdk/sparse.vmdk", "past.vmdk", (image) => {
        // The first grain directory entry names the first grain table; its first entry (grain 0 holds the MBR) goes far away.
        const gdAt = Number(image.readBigUInt64LE(56)) * 512;
        const gtAt = image.readUInt32LE(gdAt) * 512;
        image.writeUInt32LE(0x7fffff00, gtAt);
      });
      await refused(path, /past\.vmdk: .*grain table .*past the end of the file/);
    });

    test("a compressed grain whose marker claims a huge size", async () => {
      const path = crafted("vmdk/stream.vmdk", "huge-grain.vmdk", (image) => {
        const gdAt = Number(image.readBigUInt64LE(56)) * 512;
        const gtAt = image.readUInt32LE(gdAt) * 512;
        const grainAt = image.readUInt32LE(gtAt) * 512;
        image.writeUInt32LE(0xfffffff0, grainAt + 8);
      });
      await refused(path, /huge-grain\.vmdk: .*compressed grain at byte \d+ .*: 4294967280 compressed bytes for a 65536-byte grain/);
    });

    test("a chain whose parent is itself", async () => {
      const top = readFileSync(join(dir, "vmdk/chain/top.vmdk"));
      const text = top.toString("latin1");
      const patched = Buffer.from(text.replace('parentFileNameHint="../base.vmdk"', 'parentFileNameHint="loop.vmdk"   '), "latin1");
      assert.equal(patched.length, top.length);
      const path = join(work, "loop.vmdk");
      writeFileSync(path, patched);
      await refused(path, /the backing chain comes back to this image/);
    });

    test("a descriptor naming an extent file that is not there", async () => {
      const descriptor = readFileSync(join(dir, "vmdk/flat.vmdk"), "latin1").replace('"flat-flat.vmdk"', '"missing-flat.vmdk"');
      const path = join(work, "missing.vmdk");
      writeFileSync(path, descriptor);
      const r = await platter(["info", path]);
      assert.notEqual(r.code, 0);
      assert.match(r.stderr, /^platter: .*missing-flat\.vmdk.*\n$/);
    });
  });

  describe("VDI", () => {
    const mapAt = (image: Buffer) => image.readUInt32LE(0x154);

    test("a block map entry past the end of the file", async () => {
      const path = crafted("vdi/dynamic.vdi", "past.vdi", (image) => image.writeUInt32LE(0x00ffffff, mapAt(image)));
      await refused(path, /past\.vdi: VDI block map entry 0 .*past the end of the file/);
    });

    test("two block map entries naming the same block", async () => {
      const path = crafted("vdi/dynamic.vdi", "shared.vdi", (image) => {
        image.writeUInt32LE(image.readUInt32LE(mapAt(image)), mapAt(image) + 4 * 2);
      });
      await refused(path, /shared\.vdi: VDI block map entr/);
    });

    test("a 16 TiB disk whose block map is 64 entries", async () => {
      const path = crafted("vdi/dynamic.vdi", "huge.vdi", (image) => image.writeBigUInt64LE(16n * 1024n ** 4n, 0x170));
      await refused(path, /huge\.vdi: VDI: 64 blocks \(byte 384\) cannot hold a disk of 17592186044416 bytes/);
    });
  });

  test("through the CLI: one line on stderr, exit 1", async () => {
    const path = crafted("vdi/dynamic.vdi", "cli.vdi", (image) => image.writeUInt32LE(0x00ffffff, image.readUInt32LE(0x154)));
    for (const args of [["info", path], ["parts", path], ["ls", path, "--part", "1"]]) {
      const r = await platter(args);
      assert.equal(r.code, 1, `${args.join(" ")}: ${r.stderr}`);
      assert.match(r.stderr, /^platter: .*cli\.vdi: VDI block map entry 0 .*\n$/);
    }
  });

  test("huge empty disks in small files: info and parts in bounded memory", async () => {
    // Empty disks as qemu-img creates them: a 2 TiB VMDK, a 2040 GiB VHD, a 60 TiB VHDX, each a few MiB of tables.
    const vmdk = join(work, "empty-huge.vmdk");
    const vhd = join(work, "empty-huge.vhd");
    const vhdx = join(work, "empty-huge.vhdx");
    for (const args of [
      ["-f", "vmdk", vmdk, "2T"],
      ["-f", "vpc", "-o", "force_size=on", vhd, "2040G"],
      ["-f", "vhdx", vhdx, "60T"],
    ]) {
      const r = await run("qemu-img", ["create", "-q", ...args]);
      assert.equal(r.code, 0, r.stderr);
    }
    for (const path of [vmdk, vhd, vhdx]) {
      for (const command of ["info", "parts"]) {
        const r = await nodeWithPeak([CLI, command, path]);
        assert.ok(r.code === 0 || r.code === 1, `${command} ${path}: ${r.stderr}`);
        assert.ok(r.peakMiB < 200, `${command} ${path}: peak ${r.peakMiB.toFixed(0)} MiB`);
      }
    }
  });
});
