/**
 * UnitReader decodes units into pooled memory and gives it back once a unit
 * has left its cache and no read copies from it any more. Hammered here with
 * a cache of two units, read-ahead, and decoders that finish in scrambled
 * order, so units leave the cache while reads still wait on them: every
 * byte read must still be the unit's own.
 */
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { type DecodedUnits, UnitReader } from "../../src/container/unit-reader.js";

/** The pool's smallest size class: smaller units would never be pooled. */
const UNIT = 64 << 10;
const COUNT = 40;

/** Units of UNIT bytes, unit i all (i + 1); each decode finishes after a pseudo-random delay. */
function slowUnits(): DecodedUnits & { decodes: number } {
  let seed = 7;
  const delay = () => {
    seed = (seed * 1103515245 + 12345) >>> 0;
    return seed % 4;
  };
  return {
    decodes: 0,
    count: COUNT,
    start: (i) => i * UNIT,
    find: (offset) => Math.floor(offset / UNIT),
    async decode(i, memory) {
      this.decodes++;
      const out = memory.subarray(0, UNIT);
      // Written in two halves, a wait between: memory handed to two units at once would mix them.
      out.fill(i + 1, 0, UNIT / 2);
      await new Promise((resolve) => setTimeout(resolve, delay()));
      out.fill(i + 1, UNIT / 2);
      return out;
    },
  };
}

function assertUnitBytes(bytes: Buffer, offset: number): void {
  const expected = Buffer.alloc(bytes.length);
  for (let at = offset; at < offset + bytes.length; at = (Math.floor(at / UNIT) + 1) * UNIT) {
    expected.fill(Math.floor(at / UNIT) + 1, at - offset, Math.min(offset + bytes.length, (Math.floor(at / UNIT) + 1) * UNIT) - offset);
  }
  if (!bytes.equals(expected)) {
    const k = bytes.findIndex((b, i) => b !== expected[i]);
    assert.fail(`byte ${offset + k} is ${bytes[k]}, not ${expected[k]}`);
  }
}

describe("UnitReader", () => {
  test("units leaving a cache of two while reads still wait on them keep their bytes until those reads have copied them", async () => {
    const units = slowUnits();
    const reader = new UnitReader(units, "test", UNIT * COUNT, { cacheBytes: 2 * UNIT, largestUnit: UNIT, readAhead: 4 });
    let seed = 1;
    const next = (n: number) => {
      seed = (seed * 1103515245 + 12345) >>> 0;
      return seed % n;
    };
    const reads: Array<Promise<void>> = [];
    for (let r = 0; r < 400; r++) {
      // Mostly forward (read-ahead), sometimes anywhere; spans of one to three units, unaligned.
      const offset = r % 5 === 0 ? next(UNIT * COUNT - 1) : ((r * 37) % (UNIT * (COUNT - 3))) + next(UNIT);
      const length = 1 + next(Math.min(3 * UNIT, UNIT * COUNT - offset));
      reads.push(reader.read(offset, length).then((bytes) => assertUnitBytes(bytes, offset)));
      // Reads start while others wait, so memory given back is taken again by decodes still to come.
      await new Promise((resolve) => (next(2) ? setTimeout(resolve, next(3)) : setImmediate(resolve)));
      if (reads.length === 8) await reads.shift();
    }
    await Promise.all(reads);
    assert.ok(units.decodes > COUNT, `units were decoded again after leaving the cache (${units.decodes} decodes)`);
  });

  test("a unit that fails is read as its error, and its memory is not handed out while it is still cached", async () => {
    const units = slowUnits();
    const failing: DecodedUnits = { ...units, decode: (i, memory) => (i === 3 ? Promise.reject(new Error("unit 3 is corrupt")) : units.decode(i, memory)) };
    const reader = new UnitReader(failing, "test", UNIT * COUNT, { cacheBytes: 2 * UNIT, largestUnit: UNIT, readAhead: 2 });
    await assert.rejects(reader.read(2 * UNIT + 50, UNIT), /unit 3 is corrupt/);
    for (let i = 4; i < 12; i++) assertUnitBytes(await reader.read(i * UNIT + 10, UNIT), i * UNIT + 10);
  });
});
