/** ImageWriter's hashing of what the kernel copied, read back from DEST. */
import assert from "node:assert/strict";
import { test } from "node:test";
import { isReadError } from "../../src/capture/copier.js";
import { ImageWriter, InOrderHasher } from "../../src/capture/image-writer.js";
import { createHasher } from "../../src/capture/parallel-hasher.js";
import { DeviceError } from "../../src/errors.js";
import type { BlockSink, BlockSource } from "../../src/io/block-source.js";
import { MemorySource } from "../../src/io/memory-source.js";

const sink = (): BlockSink => ({
  name: "dest",
  sequential: false,
  write: async () => {},
  writeZeros: async () => {},
  setSize: async () => {},
  flush: async () => {},
  close: async () => {},
  copyFrom: async () => true,
}) as unknown as BlockSink;

test("a DEST that fails to read back stops the capture with an error a copier does not take for a bad SOURCE area", async () => {
  const hasher = new InOrderHasher(createHasher(["sha256"], 2 << 20), 0);
  const failing = (): Promise<BlockSource> =>
    Promise.resolve({
      name: "dest",
      size: 3 << 20,
      sectorSize: 512,
      read: async () => {
        throw new DeviceError("dest: input/output error", "EIO");
      },
      close: async () => {},
    } as BlockSource);
  const writer = new ImageWriter(sink(), { origin: 0, sparse: false, zeroFilled: true, hasher, readBack: failing });
  const source = new MemorySource(Buffer.alloc(3 << 20, 1), 512, "src");
  assert.equal(await writer.copy(source, 0, 1 << 20), true);
  // One span is copied while the last is hashed...
  assert.equal(await writer.copy(source, 1 << 20, 1 << 20), true);
  // ...but the first span's hashing failed meanwhile: the copy after next says so instead of copying.
  const err = await writer.copy(source, 2 << 20, 1 << 20).then(
    () => undefined,
    (e: unknown) => e,
  );
  assert.ok(err instanceof DeviceError, String(err));
  assert.match(err.message, /reading DEST back to hash what was copied: dest: input\/output error/);
  assert.equal(isReadError(err), false, "not a read error of SOURCE");
  await assert.rejects(writer.settle(), /reading DEST back/);
});
