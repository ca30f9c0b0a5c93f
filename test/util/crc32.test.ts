import assert from "node:assert/strict";
import { test } from "node:test";
import { crc32, crc32c } from "../../src/util/crc32.js";

// Check values from RFC 3720 (iSCSI) appendix B.4 and the CRC catalogue ("123456789" -> E3069283).
test("crc32c matches the published check values", () => {
  assert.equal(crc32c(Buffer.from("123456789")), 0xe3069283);
  assert.equal(crc32c(Buffer.alloc(32, 0)), 0x8a9136aa);
  assert.equal(crc32c(Buffer.alloc(32, 0xff)), 0x62a8ab43);
  assert.equal(crc32c(Buffer.from(Array.from({ length: 32 }, (_, i) => i))), 0x46dd794e);
  assert.equal(crc32c(Buffer.from(Array.from({ length: 32 }, (_, i) => 31 - i))), 0x113fdb5c);
  assert.equal(crc32c(Buffer.alloc(0)), 0);
});

test("crc32c continues across pieces, at every split and length", () => {
  const data = Buffer.from(Array.from({ length: 77 }, (_, i) => (i * 37 + 11) & 0xff));
  const whole = crc32c(data);
  for (let split = 0; split <= data.length; split++) {
    assert.equal(crc32c(data.subarray(split), crc32c(data.subarray(0, split))), whole, `split at ${split}`);
  }
});

test("crc32 agrees with zlib's at every length and across pieces", async () => {
  const { crc32: zlibCrc32 } = await import("node:zlib");
  const data = Buffer.from(Array.from({ length: 300 }, (_, i) => (i * 91 + 7) & 0xff));
  assert.equal(crc32(Buffer.from("123456789")), 0xcbf43926);
  for (let length = 0; length <= data.length; length++) assert.equal(crc32(data.subarray(0, length)), zlibCrc32(data.subarray(0, length)), `length ${length}`);
  assert.equal(crc32(data.subarray(100), crc32(data.subarray(0, 100))), zlibCrc32(data));
});
