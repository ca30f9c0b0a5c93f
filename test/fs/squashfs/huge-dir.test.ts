/**
 * A squashfs directory of a million names is 2 MiB of image: listing it must
 * not hold it. The image is crafted (craft.ts; a small one is checked against
 * unsquashfs here), and the reader runs in a child process whose peak RSS the
 * kernel reports.
 */
import assert from "node:assert/strict";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { before, describe, test } from "node:test";
import { needs } from "../../helpers/env.js";
import { nodeWithPeak } from "../../helpers/peak-rss.js";
import { sh } from "../../helpers/run.js";
import { tempDir } from "../../helpers/tmp.js";
import { craftDirectoryImage, craftedNames } from "./craft.js";
import { SORT_BUDGET } from "../../../src/fs/walk.js";

const MILLION = 1_000_000;
const SQUASHFS = new URL("../../../dist/fs/squashfs/index.js", import.meta.url).pathname;
const FILE_SOURCE = new URL("../../../dist/io/file-source.js", import.meta.url).pathname;
const WALK = new URL("../../../dist/fs/walk.js", import.meta.url).pathname;

/** Run `body` (an async function body given `fs` and `root`) on `image` in a child; its output and peak RSS. */
async function inChild(image: string, body: string) {
  const script = `
import { openSource } from ${JSON.stringify(FILE_SOURCE)};
import { openSquashfs } from ${JSON.stringify(SQUASHFS)};
import { walk } from ${JSON.stringify(WALK)};
const source = await openSource(${JSON.stringify(image)});
const fs = await openSquashfs(source);
const root = await fs.root();
${body}
await source.close();
`;
  const r = await nodeWithPeak(["--input-type=module", "-e", script]);
  assert.equal(r.code, 0, r.stderr);
  return r;
}

describe("a squashfs directory of a million names", () => {
  const work = tempDir();
  const image = join(work, "million.sqfs");
  before(() => {
    writeFileSync(image, craftDirectoryImage(craftedNames(MILLION)));
  });

  test("the crafted image is one unsquashfs reads: a small one lists the same", { skip: needs("unsquashfs") }, async () => {
    const small = join(work, "small.sqfs");
    const names = craftedNames(3000);
    writeFileSync(small, craftDirectoryImage(names));
    const listed = (await sh(`unsquashfs -ls ${small}`)).split("\n").filter((l) => l.startsWith("squashfs-root/"));
    assert.deepEqual(listed, names.map((n) => `squashfs-root/${n}`));
    const r = await inChild(small, "let n = 0; for await (const e of fs.list(root)) n++; process.stdout.write(String(n));");
    assert.equal(r.stdout, "3000");
  });

  test("list() streams it: a million entries in stored order, in bounded memory", async () => {
    const r = await inChild(
      image,
      `let n = 0, last = "", sorted = true;
for await (const { name } of fs.list(root)) { if (name <= last) sorted = false; last = name; n++; }
process.stdout.write(JSON.stringify({ n, last, sorted }));`,
    );
    assert.deepEqual(JSON.parse(r.stdout), { n: MILLION, last: "f0999999", sorted: true });
    assert.ok(r.peakMiB < 150, `peak RSS ${r.peakMiB.toFixed(0)} MiB`);
  });

  test("walk() gives it in stored order with a warning past the sort budget, in bounded memory; lookup() finds the last name", async () => {
    const r = await inChild(
      image,
      `let n = 0;
for await (const e of walk(fs, root, "/", { onWarning: (m) => process.stderr.write(m + "\\n") })) n++;
const found = await fs.lookup(root, "f0999999");
const missing = await fs.lookup(root, "f1000000");
process.stdout.write(JSON.stringify({ n, found: found?.stat.type, missing: missing === undefined }));`,
    );
    assert.deepEqual(JSON.parse(r.stdout), { n: MILLION, found: "file", missing: true });
    assert.match(r.stderr, new RegExp(`^/: more than ${SORT_BUDGET} entries; listed in the order they are stored, not sorted$`, "m"));
    assert.ok(r.peakMiB < 200, `peak RSS ${r.peakMiB.toFixed(0)} MiB`);
  });
});
