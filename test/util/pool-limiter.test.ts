import assert from "node:assert/strict";
import { test } from "node:test";
import { isAligned } from "../../src/io/aligned.js";
import { BufferPool } from "../../src/util/buffer-pool.js";
import { Limiter } from "../../src/util/limiter.js";
import { LruCache } from "../../src/util/lru.js";

const nextTurn = () => new Promise((resolve) => setImmediate(resolve));
/** The same memory: blocks are cut from shared slabs, so the store alone does not tell. */
const same = (x: Buffer, y: Buffer) => x.buffer === y.buffer && x.byteOffset === y.byteOffset;

test("BufferPool hands a given-back buffer out again, only after the current turn, and never twice at once", async () => {
  const pool = new BufferPool(1 << 20);
  const a = pool.take(100_000);
  assert.equal(a.length, 100_000);
  pool.give(a);
  pool.give(a); // a second give of the same buffer is ignored
  const early = pool.take(100_000);
  assert.ok(!same(early, a), "not reused in the same turn: a reader may still be copying out of it");
  await nextTurn();
  const b = pool.take(70_000);
  const c = pool.take(70_000);
  assert.ok(same(b, a), "reused once the turn is over (same size class)");
  assert.ok(!same(c, a));
  const foreign = Buffer.alloc(100_000);
  pool.give(foreign);
  await nextTurn();
  assert.notEqual(pool.take(100_000).buffer, foreign.buffer, "a buffer the pool did not make is not taken in");
});

test("BufferPool keeps at most its idle budget", async () => {
  const pool = new BufferPool(256 << 10);
  const taken = [pool.take(128 << 10), pool.take(128 << 10), pool.take(128 << 10)];
  for (const b of taken) pool.give(b);
  await nextTurn();
  const again = [pool.take(128 << 10), pool.take(128 << 10), pool.take(128 << 10)];
  const reused = again.filter((b) => taken.some((t) => same(t, b))).length;
  assert.equal(reused, 2);
});

test("BufferPool cuts small blocks from shared slabs without overlap; an aligned pool's blocks take O_DIRECT as they are", async () => {
  for (const aligned of [false, true]) {
    const pool = new BufferPool(0, { aligned });
    const blocks = [70_000, 1 << 20, 64 << 10, 3 << 20, 1 << 20, 5 << 20, 1].map((n) => pool.take(n));
    blocks.forEach((b, i) => b.fill(i + 1));
    blocks.forEach((b, i) => assert.ok(b.every((x) => x === i + 1), `block ${i} kept its bytes (${aligned ? "aligned" : "plain"} pool)`));
    if (aligned) for (const b of blocks) assert.ok(isAligned(b, 4096), "page-aligned");
  }
});

test("Limiter runs at most `width` jobs at once, in call order, and passes failures to their callers", async () => {
  const limiter = new Limiter(2);
  let running = 0;
  let most = 0;
  const started: number[] = [];
  const jobs = Array.from({ length: 8 }, (_, i) =>
    limiter.run(async () => {
      started.push(i);
      running++;
      most = Math.max(most, running);
      for (let t = 0; t < (i % 3) + 1; t++) await nextTurn();
      running--;
      if (i === 5) throw new Error("job 5 fails");
      return i;
    }),
  );
  const results = await Promise.allSettled(jobs);
  assert.equal(most, 2);
  assert.deepEqual(started, [0, 1, 2, 3, 4, 5, 6, 7]);
  assert.equal(results[5]?.status, "rejected");
  assert.deepEqual(results.filter((r) => r.status === "fulfilled").map((r) => (r as PromiseFulfilledResult<number>).value), [0, 1, 2, 3, 4, 6, 7]);
});

test("LruCache tells onEvict what set() pushed out, least recent first", () => {
  const evicted: Array<[number, string]> = [];
  const cache = new LruCache<number, string>(2, (k, v) => evicted.push([k, v]));
  cache.set(1, "a");
  cache.set(2, "b");
  cache.get(1);
  cache.set(3, "c");
  cache.set(4, "d");
  assert.deepEqual(evicted, [[2, "b"], [1, "a"]]);
});
