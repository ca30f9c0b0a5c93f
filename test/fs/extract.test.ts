import assert from "node:assert/strict";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { before, describe, test } from "node:test";
import { extractTree, type ExtractProgress } from "../../src/fs/extract/index.js";
import { openFilesystem } from "../../src/fs/open.js";
import { resolvePath } from "../../src/fs/path.js";
import { openSource } from "../../src/io/file-source.js";
import { MemorySource } from "../../src/io/memory-source.js";
import { needs } from "../helpers/env.js";
import { fixture } from "../helpers/fixtures.js";
import { manifest, project } from "../helpers/manifest.js";
import { platter } from "../helpers/run.js";
import { tempDir } from "../helpers/tmp.js";

describe("extractor", { skip: needs("mkfs.ext4", "debugfs") }, () => {
  let dir = "";
  before(async () => {
    dir = await fixture("make-ext-images.sh", "ext");
  });

  test("the in-kernel copy (file source) and the read/write path (memory source) extract the same tree as the source of mke2fs -d", async () => {
    const image = join(dir, "small-ext2.img");
    const out = tempDir();
    const file = await openSource(image);
    const progress: ExtractProgress[] = [];
    try {
      const fs = await openFilesystem(file);
      await extractTree(fs, await resolvePath(fs, "/"), join(out, "copy"), { onProgress: (p) => progress.push({ ...p }) });
    } finally {
      await file.close();
    }
    const memory = new MemorySource(readFileSync(image));
    const fs = await openFilesystem(memory);
    const summary = await extractTree(fs, await resolvePath(fs, "/"), join(out, "read"));
    // 44 files (one of them a second hard link), /dir, /dir/sub, /many, /lost+found, 2 symlinks.
    assert.deepEqual({ ...summary, bytes: undefined }, { files: 44, dirs: 4, symlinks: 2, hardlinks: 1, specials: 0, skipped: 0, bytes: undefined, interrupted: false });
    const fields = ["type", "mode", "size", "content", "mtime"] as const;
    const notInSource = (p: string) => p.startsWith("lost+found");
    const expected = project(manifest(join(dir, "small")), [...fields]);
    assert.deepEqual(project(manifest(join(out, "copy")), [...fields], notInSource), expected);
    assert.deepEqual(project(manifest(join(out, "read")), [...fields], notInSource), expected);
    const last = progress[progress.length - 1];
    assert.equal(last.files, 44);
    assert.equal(last.totalFiles, 44);
    assert.equal(last.totalBytes, summary.bytes, "a second hard link adds no bytes");
    assert.equal(last.bytes, summary.bytes, "holes count as done");
  });

  test("extract refuses a non-empty DIR without --force, and with --force replaces files without following links", async () => {
    const image = join(dir, "small-ext2.img");
    const out = join(tempDir(), "out");
    const outside = join(tempDir(), "victim.txt");
    writeFileSync(outside, "untouched\n");
    mkdirSync(join(out, "dir"), { recursive: true });
    const { symlinkSync } = await import("node:fs");
    symlinkSync(outside, join(out, "dir", "hello.txt")); // a trap: writing through it would change victim.txt
    const refused = await platter(["extract", image, "-o", out]);
    assert.equal(refused.code, 2);
    assert.match(refused.stderr, /^platter: .*out: folder is not empty \(use --force to extract into it\)\n$/);
    const forced = await platter(["extract", image, "-o", out, "--force", "-q"]);
    assert.equal(forced.code, 0, forced.stderr);
    assert.equal(readFileSync(outside, "utf8"), "untouched\n");
    assert.equal(readFileSync(join(out, "dir", "hello.txt"), "utf8"), "hello\n");
  });

  test("owners come from the image even in a setgid DIR of another group; umask does not cut modes", { skip: needs("root") }, async () => {
    const out = join(tempDir(), "setgid");
    mkdirSync(out);
    const { chmodSync, chownSync } = await import("node:fs");
    chownSync(out, 0, 4321);
    chmodSync(out, 0o2775);
    const old = process.umask(0o077);
    try {
      const r = await platter(["extract", join(dir, "ext4.img"), "/modes", "-o", out, "-q", "--force"]);
      assert.equal(r.code, 0, r.stderr);
    } finally {
      process.umask(old);
    }
    const m = manifest(out);
    assert.deepEqual(
      Object.fromEntries([...m].map(([p, e]) => [p, [e.mode.toString(8), e.uid, e.gid]])),
      {
        m0444: ["444", 0, 0],
        m0600: ["600", 0, 0],
        m4755: ["4755", 0, 0],
        owned: ["644", 1000, 1001],
        sticky: ["1777", 0, 0],
      },
    );
  });

  test("extract of one file puts it in DIR under its name; of a folder, its contents", async () => {
    const image = join(dir, "small-ext2.img");
    const base = tempDir();
    const one = await platter(["extract", image, "/dir/sub/data.bin", "-o", join(base, "one"), "-q"]);
    assert.equal(one.code, 0, one.stderr);
    assert.deepEqual([...manifest(join(base, "one")).keys()], ["data.bin"]);
    const sub = await platter(["extract", image, "/dir", "-o", join(base, "sub"), "-q"]);
    assert.equal(sub.code, 0, sub.stderr);
    assert.deepEqual([...manifest(join(base, "sub")).keys()], ["hello.txt", "sub", "sub/data.bin"]);
  });
});
