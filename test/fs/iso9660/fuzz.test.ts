import assert from "node:assert/strict";
import { mkdirSync, readFileSync, symlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import { openIso9660 } from "../../../src/fs/iso9660/index.js";
import { buildIso } from "../../../src/fs/iso9660/writer/index.js";
import { FileSink } from "../../../src/io/file-sink.js";
import { fuzzImage, tryImage } from "../../helpers/fs-fuzz.js";
import { tempDir } from "../../helpers/tmp.js";

/** A small image with every structure the reader parses: RR with CE, relocation, Joliet, El Torito. */
async function sampleImage(): Promise<Buffer> {
  const dir = tempDir();
  const src = join(dir, "src");
  let deep = join(src, "deep");
  for (let i = 0; i < 11; i++) deep = join(deep, `d${i}`);
  mkdirSync(deep, { recursive: true });
  writeFileSync(join(deep, "f.txt"), "deep\n");
  writeFileSync(join(src, `${"n".repeat(240)}.txt`), "long name\n");
  symlinkSync(`${"/target".repeat(60)}`, join(src, "link"));
  writeFileSync(join(src, "boot.bin"), Buffer.alloc(4096, 7));
  const out = join(dir, "sample.iso");
  const sink = await FileSink.open(out, { create: true, truncate: true });
  await buildIso(sink, { sources: [src], volumeId: "FUZZ", biosBoot: { path: join(src, "boot.bin") }, sourceDateEpoch: 1 });
  await sink.close();
  return readFileSync(out);
}

test("the reader survives bit-flipped images with only PlatterErrors (no hang, crash, RangeError or endless folder loop)", async () => {
  const image = await sampleImage();
  // Where the structures are: descriptors, path tables, folders and continuation blocks (the files come after).
  const firstData = image.indexOf(Buffer.alloc(4096, 7));
  assert.equal((await tryImage(image, openIso9660, "the image as written")).outcome, "read");
  const result = await fuzzImage(image, openIso9660, { copies: 800, hot: [[16 * 2048, firstData]], deepEvery: 4 });
  assert.ok(result.failed > 0, "no damage was ever noticed");
  assert.ok(result.opened > result.failed / 4, `only ${result.opened} of 800 copies opened`);
});

test("a truncated image is a clean error wherever it is cut", async () => {
  const image = await sampleImage();
  for (let cut = 0; cut < image.length; cut += 1499) {
    // tryImage fails the test on anything but a PlatterError, or on a read past its budget.
    await tryImage(image.subarray(0, cut), openIso9660, `cut at ${cut}`);
  }
});
