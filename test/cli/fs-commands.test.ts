import assert from "node:assert/strict";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { before, describe, test } from "node:test";
import { needs } from "../helpers/env.js";
import { fixture } from "../helpers/fixtures.js";
import { platter } from "../helpers/run.js";
import { tempDir } from "../helpers/tmp.js";

describe("ls, cat, extract on the command line", { skip: needs("mkfs.ext4", "debugfs") }, () => {
  let img = "";
  before(async () => {
    img = join(await fixture("make-ext-images.sh", "ext"), "small-ext2.img");
  });

  test("errors are one line and the exit code says whose fault", async () => {
    const missing = await platter(["cat", img, "/dir/nope.txt"]);
    assert.deepEqual([missing.code, missing.stderr], [2, "platter: /dir/nope.txt: no such file or directory in the image\n"]);
    const dir = await platter(["cat", img, "/dir"]);
    assert.deepEqual([dir.code, dir.stderr], [2, "platter: /dir: is a directory\n"]);
    const through = await platter(["ls", img, "/dir/hello.txt/x"]);
    assert.deepEqual([through.code, through.stderr], [2, "platter: /dir/hello.txt/x: not a directory (in the image)\n"]);
    const junk = join(tempDir(), "junk.img");
    writeFileSync(junk, Buffer.alloc(65536, 0x5a));
    const notFs = await platter(["ls", junk]);
    assert.equal(notFs.code, 1);
    assert.match(notFs.stderr, /^platter: .*junk.img: no filesystem platter can read \(it reads ext2\/3\/4, FAT12\/16\/32, exFAT, squashfs and ISO 9660\)\n$/);
    const noOut = await platter(["extract", img]);
    assert.equal(noOut.code, 2);
    assert.match(noOut.stderr, /required option '-o, --output <dir>'/);
  });

  test("an ext filesystem with a journal to replay is read as it is on disk, with a warning", async () => {
    const dirty = join(tempDir(), "dirty.img");
    const { copyFileSync } = await import("node:fs");
    copyFileSync(img.replace("small-ext2.img", "small-ext4.img"), dirty);
    const { sh } = await import("../helpers/run.js");
    await sh(`debugfs -w -R "feature needs_recovery" ${dirty}`);
    const r = await platter(["cat", dirty, "/dir/hello.txt"]);
    assert.equal(r.code, 0);
    assert.equal(r.stdout, "hello\n");
    assert.match(r.stderr, /^platter: warning: .*dirty.img: the ext journal was not replayed \(the filesystem was not cleanly unmounted\); the latest changes may be missing\n$/);
  });

  test("symlinks inside the image are followed by cat, shown as links by ls -l, and ls of a link to a folder lists it", async () => {
    assert.equal((await platter(["cat", img, "/many/link"])).stdout, "hello\n");
    const long = await platter(["ls", img, "/many/link", "-l"]);
    assert.match(long.stdout, /^lrwxrwxrwx .* link -> \.\.\/dir\/hello\.txt\n$/);
    const json = JSON.parse((await platter(["ls", img, "/dir", "-R", "--json"])).stdout);
    assert.deepEqual(
      json.map((e: { path: string; type: string }) => [e.path, e.type]),
      [["/dir/hello.txt", "file"], ["/dir/sub", "dir"], ["/dir/sub/data.bin", "file"]],
    );
  });

  test("extract --progress reports on stderr; -q prints nothing", async () => {
    const base = tempDir();
    const r = await platter(["extract", img, "-o", join(base, "a"), "--progress"]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, /extracting \d+\/44 files, .*\(100%\)/);
    assert.match(r.stdout, /^extracted 44 files, 4 folders, 2 symlinks, 1 hard link among the files \(320 KiB\) into /);
    const q = await platter(["extract", img, "-o", join(base, "b"), "-q"]);
    assert.deepEqual([q.code, q.stdout, q.stderr], [0, "", ""]);
  });
});
