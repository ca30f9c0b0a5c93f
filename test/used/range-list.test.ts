import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { setBitRuns } from "../../src/used/bitmap-runs.js";
import { RangeList } from "../../src/used/range-list.js";

describe("RangeList", () => {
  test("merges touching and overlapping ranges, answers within()/bytesWithin()", () => {
    const list = new RangeList();
    list.add(0, 10);
    list.add(10, 20);
    list.add(15, 18);
    list.add(30, 40);
    assert.deepEqual([...list], [[0, 20], [30, 40]]);
    assert.deepEqual(list.within(5, 35), [[5, 20], [30, 35]]);
    assert.equal(list.bytesWithin(5, 35), 20);
    assert.equal(list.bytes, 30);
    assert.throws(() => list.add(25, 26), /added after/);
  });

  test("a used map with one run per block stays within its budget: gaps are bridged, no used byte is dropped", () => {
    const budget = 1000;
    const list = new RangeList(budget);
    const blocks = 100_000;
    for (let b = 0; b < blocks; b++) list.add(b * 8192, b * 8192 + 4096); // every other 4 KiB block used
    assert.ok(list.count <= budget, `${list.count} runs`);
    assert.ok(list.bridged > 0);
    for (let b = 0; b < blocks; b += 997) assert.equal(list.bytesWithin(b * 8192, b * 8192 + 4096), 4096);
  });
});

describe("setBitRuns", () => {
  test("runs of set bits, least significant bit first, cut at the bit count", () => {
    assert.deepEqual([...setBitRuns(Buffer.from([0b00000110, 0xff, 0x00, 0x80]), 32)], [[1, 3], [8, 16], [31, 32]]);
    assert.deepEqual([...setBitRuns(Buffer.from([0xff, 0xff]), 12)], [[0, 12]]);
    assert.deepEqual([...setBitRuns(Buffer.from([0x00, 0xf0]), 14)], [[12, 14]]);
    assert.deepEqual([...setBitRuns(Buffer.from([0x01, 0xff]), 8)], [[0, 1]]);
  });
});
