/**
 * `extract --force` into a folder that holds a previous run: what is stale
 * is replaced by the image's own, never kept beside it under "~2", whether
 * the target tells case apart (a plain folder) or not (exFAT through FUSE).
 */
import assert from "node:assert/strict";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, test } from "node:test";
import { extractTree, type ExtractSummary } from "../../src/fs/extract/index.js";
import { resolvePath } from "../../src/fs/path.js";
import { needs } from "../helpers/env.js";
import { FakeFs, type FakeSpec } from "../helpers/fake-fs.js";
import { rawTree } from "../helpers/raw-tree.js";
import { sh } from "../helpers/run.js";
import { tempDir } from "../helpers/tmp.js";

/** Case twins at the top and inside a folder. */
function twins(): FakeSpec {
  return {
    children: [
      ["A", { content: "upper\n" }],
      ["a", { content: "lower\n" }],
      ["d", { children: [["X", { content: "upper x\n" }], ["x", { content: "lower x\n" }]] }],
    ],
  };
}

async function extract(dest: string, force: boolean): Promise<{ summary: ExtractSummary; warnings: string[] }> {
  const fs = new FakeFs(twins());
  const warnings: string[] = [];
  const summary = await extractTree(fs, await resolvePath(fs, "/"), dest, { force, onWarning: (m) => warnings.push(m) });
  return { summary, warnings };
}

function contents(dir: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [path, e] of rawTree(dir)) out[path] = e.type === "file" ? readFileSync(join(dir, path), "utf8") : e.type;
  return out;
}

describe("extract --force over a previous run", () => {
  test("on a case-sensitive target, stale a and d/x are replaced by the image's, no ~2 appears", async () => {
    const dest = join(tempDir(), "out");
    mkdirSync(join(dest, "d"), { recursive: true });
    writeFileSync(join(dest, "a"), "stale\n");
    writeFileSync(join(dest, "d", "x"), "stale x\n");
    writeFileSync(join(dest, "kept"), "not in the image\n");
    const { warnings } = await extract(dest, true);
    assert.deepEqual(warnings, []);
    assert.deepEqual(contents(dest), { A: "upper\n", a: "lower\n", d: "dir", "d/X": "upper x\n", "d/x": "lower x\n", kept: "not in the image\n" });
  });

  test("a second run with --force gives the same tree as the first", async () => {
    const dest = join(tempDir(), "out");
    await extract(dest, false);
    const first = contents(dest);
    const { warnings } = await extract(dest, true);
    assert.deepEqual(warnings, []);
    assert.deepEqual(contents(dest), first);
  });

  test("on a case-insensitive target (exFAT through FUSE), a stale a is replaced; the image's twins are A and a~2", { skip: needs("root", "loop", "fuse", "mkfs.exfat", "mount.exfat-fuse") }, async () => {
    const work = tempDir();
    const mnt = join(work, "mnt");
    const img = join(work, "exfat.img");
    mkdirSync(mnt);
    await sh(`truncate -s 8M ${img} && mkfs.exfat ${img} >/dev/null`);
    const loop = (await sh(`losetup -f --show ${img}`)).trim();
    try {
      await sh(`mount.exfat-fuse ${loop} ${mnt}`);
      try {
        const dest = join(mnt, "out");
        mkdirSync(join(dest, "d"), { recursive: true });
        writeFileSync(join(dest, "a"), "stale\n");
        writeFileSync(join(dest, "d", "X"), "stale x\n");
        const { warnings } = await extract(dest, true);
        assert.deepEqual(warnings, [
          '/a: name clashes with one already extracted, extracted as "a~2"',
          '/d/x: name clashes with one already extracted, extracted as "x~2"',
        ]);
        assert.deepEqual(contents(dest), { A: "upper\n", "a~2": "lower\n", d: "dir", "d/X": "upper x\n", "d/x~2": "lower x\n" });
      } finally {
        await sh(`umount ${mnt}`);
      }
    } finally {
      await sh(`losetup -d ${loop}`);
    }
  });
});
