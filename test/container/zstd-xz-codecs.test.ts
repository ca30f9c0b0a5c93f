/**
 * The pure codecs of the zstd and xz structures, byte for byte against
 * files the real tools wrote: what they decode is what zstd -lv and
 * xz --robot -lvv say; what they encode is what xz writes.
 */
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, test } from "node:test";
import { decodeBlockHeader, encodeLzma2BlockHeader, lzma2DictionarySize } from "../../src/container/xz/block-header.js";
import { decodeIndexField, encodeIndexField } from "../../src/container/xz/index-field.js";
import { decodeStreamFooter, encodeStreamFooter } from "../../src/container/xz/stream-footer.js";
import { decodeStreamHeader, encodeStreamHeader } from "../../src/container/xz/stream-header.js";
import { decodeVli, encodeVli } from "../../src/container/xz/vli.js";
import { decodeBlockHeader as decodeZstdBlockHeader, decodeFrameHeader } from "../../src/container/zstd/frame-header.js";
import { decodeSeekTable, decodeSeekTableFooter, encodeSeekTable } from "../../src/container/zstd/seek-table.js";
import { needs } from "../helpers/env.js";
import { run, sh } from "../helpers/run.js";
import { tempDir } from "../helpers/tmp.js";

describe("xz structures against xz's own files", { skip: needs("xz") }, () => {
  const dir = tempDir();

  test("stream header, index, stream footer: decoded as xz -lvv lists them, encoded back to the same bytes", async () => {
    const path = join(dir, "blocks.xz");
    await sh(`head -c 5000000 /dev/urandom > '${dir}/in'; (head -c 3000000 '${dir}/in'; head -c 7000000 /dev/zero) | xz -1 -T1 --check=sha256 --block-size=2MiB -c > '${path}'`);
    const file = readFileSync(path);
    assert.equal(decodeStreamHeader(file.subarray(0, 12)), 10);
    assert.ok(encodeStreamHeader(10).equals(file.subarray(0, 12)));
    const footer = decodeStreamFooter(file.subarray(file.length - 12));
    assert.ok(typeof footer !== "string");
    assert.ok(encodeStreamFooter(footer.indexSize, footer.check).equals(file.subarray(file.length - 12)));
    const indexBytes = file.subarray(file.length - 12 - footer.indexSize, file.length - 12);
    const records = decodeIndexField(indexBytes, 1000);
    assert.ok(typeof records !== "string");
    const list = (await run("xz", ["--robot", "-lvv", path])).stdout.split("\n").filter((l) => l.startsWith("block\t")).map((l) => l.split("\t"));
    // xz -lvv: total size (padded), uncompressed size, header size, compressed size; unpadded = header + compressed + check (32).
    assert.deepEqual(
      [...records.unpaddedSizes].map((u, i) => [u, records.uncompressedSizes[i]]),
      list.map((b) => [Number(b[11]) + Number(b[13]) + 32, Number(b[7])]),
    );
    const again = encodeIndexField(
      [...records.unpaddedSizes].map((u, i) => ({ unpaddedSize: u, uncompressedSize: records.uncompressedSizes[i] as number })),
      records.unpaddedSizes.length,
    );
    assert.ok(again.equals(indexBytes), "the index re-encoded is xz's, byte for byte");
    // Each block header: its size and filter as xz lists them.
    for (const b of list) {
      const header = decodeBlockHeader(file.subarray(Number(b[4]), Number(b[4]) + 1024));
      assert.ok(typeof header !== "string");
      assert.equal(header.headerSize, Number(b[11]));
      assert.equal(header.filters[0]?.id, 0x21);
      assert.equal(lzma2DictionarySize(header.filters[0]?.properties ?? Buffer.alloc(0)), 1 << 20, "--lzma2=dict=1MiB");
    }
  });

  test("an LZMA2 block header platter writes decodes to what it was given, and xz reads a block behind it", () => {
    for (const [c, u, dict] of [[710663, 4194304, 4 << 20], [5, 0, 4096], [2 ** 40, 2 ** 42, 3 << 20]] as const) {
      const header = encodeLzma2BlockHeader(c, u, dict);
      assert.equal(header.length % 4, 0);
      const back = decodeBlockHeader(header);
      assert.ok(typeof back !== "string");
      assert.deepEqual([back.headerSize, back.compressedSize, back.uncompressedSize], [header.length, c, u]);
      assert.ok((lzma2DictionarySize(back.filters[0]?.properties ?? Buffer.alloc(0)) as number) >= dict);
    }
  });

  test("variable-length integers: round trips, and the lies are refused", () => {
    for (const n of [0, 1, 127, 128, 16383, 16384, 4194304, 2 ** 40, Number.MAX_SAFE_INTEGER]) {
      const bytes = encodeVli(n);
      assert.deepEqual(decodeVli(bytes, 0), { value: n, length: bytes.length });
    }
    assert.match(String(decodeVli(Buffer.from([0x80, 0x00]), 0)), /needless zero byte/);
    assert.match(String(decodeVli(Buffer.alloc(10, 0xff), 0)), /longer than 9 bytes/);
    assert.match(String(decodeVli(Buffer.from([0x80]), 0)), /truncated/);
  });
});

describe("zstd structures against zstd's own files", { skip: needs("zstd") }, () => {
  const dir = tempDir();

  test("frame headers: content size and window as zstd -lv gives them; block headers walk to the frame's end", async () => {
    const path = join(dir, "one.zst");
    await sh(`head -c 3000000 /dev/urandom | zstd -q -19 -c > '${join(dir, "pipe.zst")}'; head -c 3000000 /dev/urandom > '${dir}/in'; zstd -q -3 '${dir}/in' -o '${path}'`);
    for (const [file, contentSize] of [[path, 3000000], [join(dir, "pipe.zst"), undefined]] as const) {
      const bytes = readFileSync(file);
      const header = decodeFrameHeader(bytes);
      assert.ok(typeof header !== "string");
      assert.equal(header.contentSize, contentSize);
      const window = /Window Size: .*\((\d+) B\)/.exec((await run("zstd", ["-lv", file])).stdout)?.[1];
      assert.equal(header.windowSize, Number(window), file);
      let at = header.headerSize;
      for (let last = false; !last; ) {
        const block = decodeZstdBlockHeader(bytes, at);
        at += 3 + block.contentBytes;
        last = block.last;
      }
      assert.equal(at + (header.hasChecksum ? 4 : 0), bytes.length, "the blocks end where the frame does");
    }
  });

  test("seek table: encoded entries decode to themselves; the footer says how many and whether checksums follow", () => {
    const entries = [
      { compressedSize: 1234, decompressedSize: 1 << 20, checksum: 0xdeadbeef },
      { compressedSize: 17, decompressedSize: 1 << 20, checksum: 1 },
      { compressedSize: 99999, decompressedSize: 4321, checksum: 0 },
    ];
    for (const withSums of [true, false]) {
      const table = encodeSeekTable(entries, entries.length, withSums);
      const footer = decodeSeekTableFooter(table);
      assert.deepEqual(footer, { frames: 3, hasChecksums: withSums });
      const back = decodeSeekTable(table, footer as { frames: number; hasChecksums: boolean });
      assert.ok(typeof back !== "string");
      assert.deepEqual([...back.compressedSizes], entries.map((e) => e.compressedSize));
      assert.deepEqual([...back.decompressedSizes], entries.map((e) => e.decompressedSize));
      assert.deepEqual(back.checksums && [...back.checksums], withSums ? entries.map((e) => e.checksum) : undefined);
    }
    assert.equal(decodeSeekTableFooter(Buffer.alloc(9)), null, "no seekable magic: no seek table");
  });
});
