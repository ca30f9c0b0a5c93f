import assert from "node:assert/strict";
import { test } from "node:test";
import { InFlight } from "../../src/util/in-flight.js";

const tick = () => new Promise((resolve) => setImmediate(resolve));

test("InFlight: start() resolves once its job has begun, never more than width at once, in call order", async () => {
  const inFlight = new InFlight(2);
  let running = 0;
  let most = 0;
  const started: number[] = [];
  for (let i = 0; i < 6; i++) {
    await inFlight.start(async () => {
      started.push(i);
      most = Math.max(most, ++running);
      await tick();
      running--;
    });
  }
  await inFlight.drain();
  assert.equal(most, 2);
  assert.deepEqual(started, [0, 1, 2, 3, 4, 5]);
});

test("InFlight: the first failure is kept; later start() and drain() reject with it, and no job starts after it is seen", async () => {
  const inFlight = new InFlight(1);
  await inFlight.start(async () => {
    await tick();
    throw new Error("first");
  });
  let ranAfter = false;
  await assert.rejects(
    inFlight.start(async () => {
      ranAfter = true;
    }),
    /first/,
  );
  assert.equal(ranAfter, false);
  await assert.rejects(inFlight.drain(), /first/);
});
