import assert from "node:assert/strict";
import { rmSync, statSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import { openIso9660 } from "../../src/fs/iso9660/index.js";
import { openSource } from "../../src/io/file-source.js";
import { needs } from "../helpers/env.js";
import { platter, sh } from "../helpers/run.js";
import { tempDir } from "../helpers/tmp.js";

const SIZE = 5 * 2 ** 30 + 12345;

test("a 5 GiB sparse file becomes a multi-extent entry: bsdtar lists its exact size and extracts it byte for byte (cmp); our reader joins the sections", { skip: needs("bsdtar", "cmp") }, async () => {
  const dir = tempDir();
  const src = join(dir, "src");
  const iso = join(dir, "big.iso");
  try {
    // Sparse in: a few marked bytes in a 5 GiB hole, one of them across the 4 GiB section boundary.
    await sh(`mkdir ${src} && truncate -s ${SIZE} ${src}/five.bin &&
      printf start | dd of=${src}/five.bin conv=notrunc status=none &&
      printf across | dd of=${src}/five.bin bs=1 seek=${0xfffff800 - 3} conv=notrunc status=none &&
      printf end | dd of=${src}/five.bin bs=1 seek=${SIZE - 3} conv=notrunc status=none`);
    const r = await platter(["iso", src, "-o", iso]);
    assert.equal(r.code, 0, r.stderr);
    // Stream out to a file that stays sparse: the holes are never written.
    assert.ok(statSync(iso).blocks * 512 < 16 << 20, "the image is not sparse");

    const listing = await sh(`bsdtar -tvf ${iso}`);
    assert.match(listing, new RegExp(` ${SIZE} .* five\\.bin\\n`));
    // cmp, not two SHA-256 passes over 5 GiB; bsdtar reads 1 MiB at a time (-b 2048): most of the time is the pipe.
    await sh(`bsdtar -b 2048 -xOf ${iso} five.bin | cmp - ${src}/five.bin`, { timeoutMs: 300_000 });

    // Our reader joins the two sections too, and finds the data among the holes.
    const source = await openSource(iso);
    try {
      const fs = await openIso9660(source);
      const node = (await fs.lookup(await fs.root(), "five.bin")) ?? assert.fail("five.bin not found");
      assert.equal(node.stat.size, SIZE);
      assert.equal(node.sections.length, 2);
      assert.equal((await fs.read(node, 0xfffff800 - 3, 6)).toString(), "across");
      assert.equal((await fs.read(node, SIZE - 3, 3)).toString(), "end");
      const ranges = await fs.dataRanges(node);
      assert.ok(ranges.reduce((n, [, len]) => n + len, 0) < 64 << 20, JSON.stringify(ranges));
    } finally {
      await source.close();
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
