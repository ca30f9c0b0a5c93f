/**
 * Damaged and crafted qcow2 images: every one ends in one clean
 * PlatterError naming what is wrong and where, never a crash, a hang or
 * unbounded memory. The crafting starts from images qemu-img made.
 */
import assert from "node:assert/strict";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { deflateRawSync } from "node:zlib";
import { before, describe, test } from "node:test";
import type { ContainerContext } from "../../src/container/format.js";
import { decodeL1Entry, decodeL2Entry, type L2Entry } from "../../src/container/qcow2/entries.js";
import { Qcow2Source } from "../../src/container/qcow2/index.js";
import { readQcow2Metadata } from "../../src/container/qcow2/tables.js";
import { compressBound, compressFrame } from "../../src/container/zstd/libzstd.js";
import { CorruptImageError, PlatterError } from "../../src/errors.js";
import { MemorySource } from "../../src/io/memory-source.js";
import { needs } from "../helpers/env.js";
import { fixture } from "../helpers/fixtures.js";
import { prng } from "../helpers/fs-fuzz.js";
import { run, sh } from "../helpers/run.js";
import { tempDir } from "../helpers/tmp.js";
import { openQcow2File, sha256Of } from "./qcow2-helpers.js";

const CONTEXT: ContainerContext = {
  openRelated: async (name) => {
    throw new CorruptImageError(`unexpected related file ${name}`);
  },
};

function open(image: Buffer): Promise<Qcow2Source> {
  return Qcow2Source.open(new MemorySource(image), CONTEXT);
}

/** Read every byte the image says holds data (holes are not read: they cost nothing but time). */
async function readAll(source: Qcow2Source): Promise<void> {
  for (const [start, length] of await source.dataRanges(0, source.size)) {
    for (let pos = start; pos < start + length; pos += 1 << 20) await source.read(pos, Math.min(1 << 20, start + length - pos));
  }
}

interface Located {
  /** Byte offset of the L2 entry in the file. */
  at: number;
  guest: number;
  entry: L2Entry;
}

/** The first L2 entry of `image` for which `want` holds. */
async function findEntry(image: Buffer, want: (e: L2Entry) => boolean): Promise<Located> {
  const { layout } = await readQcow2Metadata(new MemorySource(image));
  for (let i = 0; i < layout.header.l1Size; i++) {
    const { l2Offset } = decodeL1Entry(image.subarray(layout.header.l1TableOffset), i);
    if (l2Offset === 0) continue;
    const table = image.subarray(l2Offset, l2Offset + layout.clusterSize);
    for (let j = 0; j < layout.l2Entries; j++) {
      const entry = decodeL2Entry(table, j, layout);
      if (want(entry)) return { at: l2Offset + j * layout.l2EntryBytes, guest: (i * layout.l2Entries + j) * layout.clusterSize, entry };
    }
  }
  throw new Error("no such entry");
}

function expectCorrupt(pattern: RegExp) {
  return (err: Error) => {
    assert.ok(err instanceof CorruptImageError, `${err.name}: ${err.message}`);
    assert.match(err.message, pattern);
    assert.doesNotMatch(err.message, /\n/);
    return true;
  };
}

describe("hostile qcow2 images", { skip: needs("qemu-img", "qemu-io") }, () => {
  let dir = "";
  let v3: Buffer;
  let header: { l1: number; reftable: number; cluster: number };
  before(async () => {
    const disk = await fixture("make-mbr-image.sh", "mbr.img");
    dir = await fixture("make-qcow2-images.sh", "qcow2", [disk]);
    v3 = readFileSync(join(dir, "v3.qcow2"));
    header = { l1: Number(v3.readBigUInt64BE(40)), reftable: Number(v3.readBigUInt64BE(48)), cluster: 2 ** v3.readUInt32BE(20) };
  });

  test("an L1 entry pointing past the end, at the refcount table, or off a cluster boundary", async () => {
    for (const [target, pattern] of [
      [v3.length + header.cluster * 16, /L1 entry 0 .* past the end of the file/],
      [header.reftable, /L1 entry 0 .* inside the refcount table/],
      [header.l1, /L1 entry 0 .* inside the L1 table/],
      [header.cluster * 5 + 512, /L1 entry 0 .* not a cluster boundary/],
    ] as const) {
      const image = Buffer.from(v3);
      image.writeBigUInt64BE(BigInt(target) | (1n << 63n), header.l1);
      const source = await open(image);
      await assert.rejects(source.read(0, 512), expectCorrupt(pattern));
    }
  });

  test("two L1 entries sharing one L2 table (a small file mapping a petabyte of 'data') are refused at open", async () => {
    const image = Buffer.from(v3);
    image.writeBigUInt64BE(1n << 30n, 24); // a 1 GiB disk: two L1 entries
    image.writeUInt32BE(2, 36);
    image.writeBigUInt64BE(image.readBigUInt64BE(header.l1), header.l1 + 8);
    await assert.rejects(open(image), expectCorrupt(/L1 entries 0 and 1 both point at the L2 table at byte \d+/));
  });

  test("an L2 entry pointing past the end, at the header's tables, or off a cluster boundary", async () => {
    const { at, guest } = await findEntry(v3, (e) => e.kind === "normal");
    for (const [target, pattern] of [
      [v3.length + header.cluster * 4, /L2 entry for guest offset \d+ points at byte \d+, past the end of the file/],
      [header.l1, /inside the L1 table/],
      [header.reftable, /inside the refcount table/],
      [header.cluster * 7 + 4096, /not a cluster boundary/],
    ] as const) {
      const image = Buffer.from(v3);
      image.writeBigUInt64BE(BigInt(target) | (1n << 63n), at);
      const source = await open(image);
      await assert.rejects(source.read(guest, 4096), expectCorrupt(pattern));
      await assert.rejects(source.dataRanges(0, source.size), expectCorrupt(pattern));
    }
  });

  test("a compressed cluster inside the header, and one in an image that keeps data in an external file", async () => {
    const zlib = readFileSync(join(dir, "zlib.qcow2"));
    const { at, guest } = await findEntry(zlib, (e) => e.kind === "compressed");
    const image = Buffer.from(zlib);
    const entry = image.readBigUInt64BE(at);
    image.writeBigUInt64BE((entry & ~((1n << 54n) - 1n)) | 100n, at);
    await assert.rejects((await open(image)).read(guest, 512), expectCorrupt(/points at byte 100, inside the header/));
  });

  test("compressed clusters that inflate past a cluster, fall short of one, or are not deflate/zstd at all", async () => {
    for (const name of ["zlib", "zstd"]) {
      const original = readFileSync(join(dir, `${name}.qcow2`));
      const { entry, guest } = await findEntry(original, (e) => e.kind === "compressed" && e.compressedLength >= 300);
      const cluster = 65536;
      const frame = async (data: Buffer) => {
        if (name === "zlib") return deflateRawSync(data);
        const out = Buffer.alloc(compressBound(data.length));
        return out.subarray(0, await compressFrame(data, out, { level: 3, checksum: false }));
      };
      for (const [payload, pattern] of [
        [await frame(Buffer.alloc(cluster * 2, 0x61)), /(inflates|expands) to more than one cluster/],
        [await frame(Buffer.alloc(cluster / 2, 0x61)), /holds 32768 bytes, not one cluster/],
        [Buffer.alloc(64, 0xff), /is not (valid deflate data|a whole zstd frame)/],
      ] as const) {
        const image = Buffer.from(original);
        payload.copy(image, entry.hostOffset);
        const source = await open(image);
        await assert.rejects(source.read(guest, 4096), expectCorrupt(pattern), name);
      }
    }
  });

  test("a huge virtual size over a tiny file: the L1 table is too small, too large, or past the end", async () => {
    const cases: Array<[bigint, number, RegExp]> = [
      [1n << 52n, 128, /L1 table has 128 entries; a 4503599627370496-byte disk needs 8388608/],
      [1n << 52n, 1 << 23, /L1 table of 8388608 entries is larger than qemu allows/],
      [1n << 50n, 1 << 21, /L1 table at byte 196608 \(16777216 bytes\) runs past the end of the file/],
      [1n << 62n, 1 << 21, /size 4611686018427387904 is out of range/],
    ];
    for (const [size, l1Size, pattern] of cases) {
      const image = Buffer.from(v3);
      image.writeBigUInt64BE(size, 24);
      image.writeUInt32BE(l1Size, 36);
      await assert.rejects(open(image), expectCorrupt(pattern));
    }
  });

  test("a 1 PiB virtual disk made by qemu-img: data ranges found without reading a petabyte, memory bounded", async () => {
    const tmp = tempDir();
    const path = join(tmp, "huge.qcow2");
    await sh(`qemu-img create -q -f qcow2 ${path} 1P && qemu-io -c 'write -P 0x42 512T 64k' -c 'write -P 0x43 1000T 4k' ${path} >/dev/null`);
    const image = await openQcow2File(path);
    try {
      assert.deepEqual(await image.dataRanges(0, image.size), [
        [512 * 2 ** 40, 65536],
        [1000 * 2 ** 40, 65536],
      ]);
      assert.ok((await image.read(512 * 2 ** 40, 65536)).equals(Buffer.alloc(65536, 0x42)));
    } finally {
      await image.close();
    }
  });

  test("bad header fields: version, cluster size, refcount width, header length, compression type, unknown features", async () => {
    const cases: Array<[number, number, number, RegExp | string]> = [
      [4, 4, 4, "qcow2 version 4"],
      [20, 4, 30, /cluster_bits \(byte 20\) is 30/],
      [96, 4, 7, /refcount_order \(byte 96\) is 7/],
      [100, 4, 100, /header_length \(byte 100\) is 100/],
      [104, 1, 1, /compression_type \(byte 104\) is 1 while the incompatible compression-type bit is clear/],
      [76, 4, 1 << 9, /incompatible feature\(s\) platter does not know: bit 9/],
    ];
    for (const [at, width, value, pattern] of cases) {
      const image = Buffer.from(v3);
      if (width === 4) image.writeUInt32BE(value, at);
      else image[at] = value;
      await assert.rejects(open(image), (err: Error) => {
        assert.ok(err instanceof PlatterError, err.message);
        if (typeof pattern === "string") assert.ok(err.message.includes(pattern), err.message);
        else assert.match(err.message, pattern);
        return true;
      });
    }
  });

  test("the corrupt flag refuses with qemu-img check advice; the dirty flag warns and reads", async () => {
    const image = Buffer.from(v3);
    image[79] = (image[79] as number) | 2;
    await assert.rejects(open(image), expectCorrupt(/qemu marked this qcow2 image corrupt.*qemu-img check -r all/));
    const dirty = Buffer.from(v3);
    dirty[79] = (dirty[79] as number) | 1;
    const warnings: string[] = [];
    const source = await Qcow2Source.open(new MemorySource(dirty), { ...CONTEXT, onWarning: (m) => warnings.push(m) });
    assert.match(warnings.join("\n"), /not closed cleanly.*qemu-img check -r all/);
    assert.equal(await sha256Of(source), readFileSync(join(dir, "v3.qcow2.sha256"), "utf8").trim());
  });

  test("a truncated image opens, then its lost clusters are named, not read as zeros", async () => {
    const image = v3.subarray(0, Math.floor(v3.length / 2));
    const source = await open(image);
    await assert.rejects(readAll(source), expectCorrupt(/past the end of the file \(\d+ bytes\); the image may be truncated/));
  });

  test("a backing file that is itself, a loop of two, and a chain deeper than openImage allows", async () => {
    const tmp = tempDir();
    await sh(
      `cd ${tmp} && qemu-img create -q -f qcow2 self.qcow2 1M && qemu-img rebase -u -b self.qcow2 -F qcow2 self.qcow2 && ` +
        `qemu-img create -q -f qcow2 a.qcow2 1M && qemu-img create -q -f qcow2 -b a.qcow2 -F qcow2 b.qcow2 && qemu-img rebase -u -b b.qcow2 -F qcow2 a.qcow2`,
    );
    await assert.rejects(openQcow2File(join(tmp, "self.qcow2")), expectCorrupt(/backing chain comes back to this image/));
    await assert.rejects(openQcow2File(join(tmp, "b.qcow2")), expectCorrupt(/backing chain comes back to this image/));
    // qemu-img rebase -u writes the header only: a 40-deep chain in one qemu-img run per image, quickly.
    let chain = `cd ${tmp} && qemu-img create -q -f qcow2 l0.qcow2 1M`;
    for (let i = 1; i <= 40; i++) chain += ` && cp l0.qcow2 l${i}.qcow2 && qemu-img rebase -u -b l${i - 1}.qcow2 -F qcow2 l${i}.qcow2`;
    await sh(chain);
    await assert.rejects(openQcow2File(join(tmp, "l40.qcow2")), expectCorrupt(/backing chain deeper than \d+ images/));
    // ...while the top layer alone still opens.
    const top = await openQcow2File(join(tmp, "self.qcow2"), { noBacking: true });
    assert.equal(await sha256Of(top), (await sh("head -c 1M /dev/zero | sha256sum")).split(" ")[0]);
    await top.close();
  });

  test("300 bit-flipped copies of plain, compressed and extended-L2 images each read or fail cleanly", async () => {
    let opened = 0;
    let failedCleanly = 0;
    for (const name of ["v3", "zlib", "extl2"]) {
      const original = readFileSync(join(dir, `${name}.qcow2`));
      const random = prng(name.length * 7919);
      const { layout } = await readQcow2Metadata(new MemorySource(original));
      // Header, refcount table, L1 and the first L2 tables: where a flip changes the most.
      const hot = Math.min(original.length, layout.clusterSize * 8);
      for (let copy = 0; copy < 100; copy++) {
        const image = Buffer.from(original);
        for (let i = 0; i < 4; i++) {
          const at = Math.floor(random() * (random() < 0.7 ? hot : image.length));
          image[at] = (image[at] as number) ^ (1 << Math.floor(random() * 8));
        }
        try {
          const source = await open(image);
          opened++;
          await readAll(source);
          await source.read(Math.floor(random() * (source.size - 70000)), 70000);
        } catch (err) {
          if (!(err instanceof PlatterError)) throw new Error(`${name} copy ${copy}: ${(err as Error).stack}`);
          failedCleanly++;
        }
      }
    }
    console.log(`bit flips: ${opened} opened, ${failedCleanly} failed cleanly`);
  });

  test("reading a 1 TiB image with 1024 L2 tables (eight times what the cache holds) and as many compressed clusters stays under 200 MiB", async () => {
    const tmp = tempDir();
    const path = join(tmp, "scattered.qcow2");
    const writes = Array.from({ length: 1024 }, (_, i) => `-c 'write -c -P ${i % 250} ${i * 1024}M 64k'`).join(" ");
    await sh(`qemu-img create -q -f qcow2 ${path} 1T && qemu-io ${writes} ${path} >/dev/null`);
    const child = join(tmp, "child.mts");
    writeFileSync(
      child,
      `import { openQcow2File, sha256Of } from ${JSON.stringify(join(import.meta.dirname, "qcow2-helpers.ts"))};
const image = await openQcow2File(process.argv[2]);
let bytes = 0;
for (const [start, length] of await image.dataRanges(0, image.size)) { await image.read(start, length); bytes += length; }
console.log(JSON.stringify({ bytes, maxRSS: process.resourceUsage().maxRSS }));
await image.close();
`,
    );
    const r = await run(process.execPath, ["--import", "tsx", child, path], { timeoutMs: 600_000 });
    assert.equal(r.code, 0, r.stderr);
    const { bytes, maxRSS } = JSON.parse(r.stdout);
    assert.equal(bytes, 1024 * 65536);
    assert.ok(maxRSS < 200 * 1024, `maxRSS ${maxRSS} KiB`);
    console.log(`1 TiB scattered image: read ${bytes} bytes, maxRSS ${Math.round(maxRSS / 1024)} MiB`);
  });
});
