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
/** The source's only bytes that are not zero: one of them across the 4 GiB section boundary. */
const MARKS: Array<[number, string]> = [
  [0, "start"],
  [0xfffff800 - 3, "across"],
  [SIZE - 3, "end"],
];

/** A Node program that writes the source's SIZE bytes (zeros and MARKS) to its stdout, 1 MiB at a time. */
function sourceBytes(marks: Array<[number, string]>): string {
  return `const fs = require("fs"); const marks = ${JSON.stringify(marks)}; const zeros = Buffer.alloc(1 << 20);
for (let at = 0; at < ${SIZE}; at += zeros.length) {
  let chunk = zeros.subarray(0, Math.min(zeros.length, ${SIZE} - at));
  for (const [m, text] of marks) {
    const s = m - at;
    if (s >= chunk.length || s + text.length <= 0) continue;
    if (chunk.buffer === zeros.buffer) chunk = Buffer.from(chunk);
    Buffer.from(text).copy(chunk, Math.max(0, s), Math.max(0, -s));
  }
  for (let done = 0; done < chunk.length; ) done += fs.writeSync(1, chunk, done);
}`;
}

function shellQuote(text: string): string {
  return `'${text.replace(/'/g, "'\\''")}'`;
}

test("a 5 GiB sparse file becomes a multi-extent entry: bsdtar lists its exact size and extracts it byte for byte (cmp); our reader joins the sections", { skip: needs("bsdtar", "cmp") }, async () => {
  const dir = tempDir();
  const src = join(dir, "src");
  const iso = join(dir, "big.iso");
  try {
    // Sparse in: a few marked bytes in a 5 GiB hole, one of them across the 4 GiB section boundary.
    await sh(`mkdir ${src} && truncate -s ${SIZE} ${src}/five.bin`);
    for (const [at, text] of MARKS) await sh(`printf ${text} | dd of=${src}/five.bin bs=1 seek=${at} conv=notrunc status=none`);
    const r = await platter(["iso", src, "-o", iso]);
    assert.equal(r.code, 0, r.stderr);
    // Stream out to a file that stays sparse: the holes are never written.
    assert.ok(statSync(iso).blocks * 512 < 16 << 20, "the image is not sparse");

    const listing = await sh(`bsdtar -tvf ${iso}`);
    assert.match(listing, new RegExp(` ${SIZE} .* five\\.bin\\n`));
    // cmp against the bytes the source holds, made in a pipe: reading 5 GiB of the source's hole cost 30 s of page-cache
    // pages on the development VM. bsdtar reads 1 MiB at a time (-b 2048).
    await sh(`cmp <(bsdtar -b 2048 -xOf ${iso} five.bin) <(${JSON.stringify(process.execPath)} -e ${shellQuote(sourceBytes(MARKS))})`, {
      timeoutMs: 300_000,
    });

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
