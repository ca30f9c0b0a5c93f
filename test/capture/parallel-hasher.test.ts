import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { test } from "node:test";
import { InlineHasher, WorkerHasher } from "../../src/capture/parallel-hasher.js";
import { allocAligned } from "../../src/io/aligned.js";

test("the worker hasher gives node:crypto's digests for chunks of any size, zero runs included, from shared memory or through its ring", async () => {
  const parts: Array<Buffer | number> = [];
  let seed = 5;
  for (let i = 0; i < 60; i++) {
    seed = (seed * 48271) % 2147483647;
    const size = [1, 511, 4096, 1 << 20, (1 << 20) + 3, 5 << 20][seed % 6];
    parts.push(i % 7 === 3 ? size : Buffer.alloc(size, seed & 0xff));
  }
  const reference = { md5: createHash("md5"), sha256: createHash("sha256") };
  const worker = new WorkerHasher(["md5", "sha256"]);
  const inline = new InlineHasher(["md5", "sha256"]);
  const reused = Buffer.alloc(5 << 20);
  // Shared memory (the copier's read buffers) is hashed in place, not copied into the ring.
  const shared = [allocAligned(5 << 20), allocAligned(5 << 20)];
  let turn = 0;
  for (const p of parts) {
    const data = typeof p === "number" ? Buffer.alloc(p) : p;
    for (const h of Object.values(reference)) h.update(data);
    if (typeof p === "number") {
      await worker.updateZeros(p);
      inline.updateZeros(p);
    } else {
      // The caller's buffer is reused as soon as update() resolves, as the copier does.
      const buf = turn++ % 3 === 2 ? reused : shared[turn % 2];
      p.copy(buf);
      await worker.update(buf.subarray(0, p.length));
      buf.fill(0xee);
      inline.update(p);
    }
  }
  const expected = { md5: reference.md5.digest("hex"), sha256: reference.sha256.digest("hex") };
  assert.deepEqual(await worker.digest(), expected);
  assert.deepEqual(await inline.digest(), expected);
});

test("updates the caller does not wait for, each larger than the ring has room for, reach the workers in order", async () => {
  const reference = createHash("sha512");
  const worker = new WorkerHasher(["sha512"]);
  const pending: Array<Promise<void> | void> = [];
  for (let i = 0; i < 24; i++) {
    // Several MiB each, no two alike; 24 of them overflow the 16 MiB ring many times over.
    const data = Buffer.alloc((3 << 20) + i * 4099, i + 1);
    data.writeUInt32LE(i, 0);
    reference.update(data);
    pending.push(worker.update(data));
  }
  await Promise.all(pending);
  assert.deepEqual(await worker.digest(), { sha512: reference.digest("hex") });
});
