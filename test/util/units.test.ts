import assert from "node:assert/strict";
import { test } from "node:test";
import { UsageError } from "../../src/errors.js";
import { formatSize, parseSize } from "../../src/util/units.js";

test("sizes parse as dd does: K/M/G and KiB binary, KB decimal, s sectors", () => {
  assert.equal(parseSize("4096"), 4096);
  assert.equal(parseSize("64K"), 65536);
  assert.equal(parseSize("1MiB"), 1 << 20);
  assert.equal(parseSize("1M"), 1 << 20);
  assert.equal(parseSize("1MB"), 1e6);
  assert.equal(parseSize("2G"), 2 * 2 ** 30);
  assert.equal(parseSize("8s"), 4096);
  assert.equal(parseSize("0x200"), 512);
  assert.throws(() => parseSize("12Q"), UsageError);
  assert.throws(() => parseSize("-1"), UsageError);
  assert.throws(() => parseSize(""), UsageError);
});

test("sizes format in binary units", () => {
  assert.equal(formatSize(512), "512 B");
  assert.equal(formatSize(1536), "1.5 KiB");
  assert.equal(formatSize(64 << 20), "64 MiB");
  assert.equal(formatSize(20_971_520), "20 MiB");
  assert.equal(formatSize(200 << 20), "200 MiB");
  assert.equal(formatSize(160 << 20), "160 MiB");
  assert.equal(formatSize(2 << 20), "2 MiB");
});
