import assert from "node:assert/strict";
import { test } from "node:test";
import { OrderedWindow } from "../../src/util/ordered-window.js";

const later = <T>(value: T, ticks: number) => new Promise<T>((resolve) => setImmediate(function tick() { if (--ticks <= 0) resolve(value); else setImmediate(tick); }));

test("OrderedWindow hands results on in push order, however the jobs finish", async () => {
  const seen: number[] = [];
  let running = 0;
  let most = 0;
  const window = new OrderedWindow<number>(3, (n) => {
    seen.push(n);
  });
  for (let i = 0; i < 30; i++) {
    await window.push(async () => {
      running++;
      most = Math.max(most, running);
      const value = await later(i, (i * 7) % 5 + 1);
      running--;
      return value;
    });
  }
  await window.drain();
  assert.deepEqual(seen, Array.from({ length: 30 }, (_, i) => i));
  assert.ok(most <= 3, `at most 3 jobs at once, saw ${most}`);
});

test("OrderedWindow: the first failure stops new jobs and is rethrown", async () => {
  const window = new OrderedWindow<number>(2, () => {});
  await assert.rejects(async () => {
    await window.push(async () => {
      throw new Error("job 0 failed");
    });
    for (let i = 1; i < 10; i++) await window.push(async () => i);
    await window.drain();
  }, /job 0 failed/);
});
