/**
 * ls and extract through openFilesystem on the squashfs and exFAT fixtures
 * (their readers have their own tests): what `platter extract` writes must
 * equal what `unsquashfs -d` writes, and what the exFAT FUSE mount showed.
 */
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { before, describe, test } from "node:test";
import { needs } from "../helpers/env.js";
import { fixture } from "../helpers/fixtures.js";
import { manifest, project } from "../helpers/manifest.js";
import { platter, sh } from "../helpers/run.js";
import { tempDir } from "../helpers/tmp.js";

describe("extract of squashfs images equals unsquashfs -d", { skip: needs("root", "mksquashfs", "unsquashfs", "setfattr") }, () => {
  let dir = "";
  before(async () => {
    dir = await fixture("make-squashfs-images.sh", "squashfs");
  });

  for (const name of ["gzip", "xz", "zstd", "lz4", "nocomp"]) {
    test(`${name}.sqfs: names, types, modes, owners, sizes, bytes, link targets, mtimes, hard links`, async () => {
      const img = join(dir, `${name}.sqfs`);
      const tmp = tempDir();
      const mine = join(tmp, "platter");
      const theirs = join(tmp, "unsquashfs");
      const r = await platter(["extract", img, "-o", mine, "-q"]);
      assert.equal(r.code, 0, r.stderr);
      await sh(`unsquashfs -q -n -d ${theirs} ${img} >/dev/null`);
      // Devices, fifos and sockets are checked in extract-special.test.ts.
      const special = (_: string, e: { type: string }) => e.type === "other";
      const fields = ["type", "mode", "uid", "gid", "size", "content", "mtime"] as const;
      const a = manifest(mine);
      const b = manifest(theirs);
      assert.deepEqual(project(a, [...fields], special), project(b, [...fields], special));
      assert.equal(a.get("hl-a")?.ino, a.get("hl-b")?.ino, "hard links extracted as hard links");
    });
  }

  test("ls --json of a squashfs folder has the DESIGN.md shape", async () => {
    const r = await platter(["ls", join(dir, "gzip.sqfs"), "--json"]);
    assert.equal(r.code, 0, r.stderr);
    const entries = JSON.parse(r.stdout) as Array<Record<string, unknown>>;
    const link = entries.find((e) => e.name === "link-to-file");
    assert.deepEqual(link, { path: "/link-to-file", name: "link-to-file", type: "symlink", size: 7, mode: 0o777, uid: 1234, gid: 5678, nlink: 1, mtime: 1234567890, target: "big.bin" });
  });
});

describe("extract of exFAT images equals what the exfat-fuse mount showed", { skip: needs("root", "loop", "fuse", "mkfs.exfat", "mount.exfat-fuse") }, () => {
  let dir = "";
  before(async () => {
    dir = await fixture("make-exfat-images.sh", "exfat");
  });

  for (const name of ["c4k", "c512", "s4k"]) {
    test(`${name}.img: names, types, sizes, bytes, mtimes`, async () => {
      const img = join(dir, `${name}.img`);
      const out = join(tempDir(), "platter");
      const r = await platter(["extract", img, "-o", out, "-q"]);
      assert.equal(r.code, 0, r.stderr);
      const mine = manifest(out);
      // `find -printf '%y %s %T@ %P'` on the mount: type, size (folders: allocated bytes), mtime, path.
      const seen = readFileSync(`${img}.find`, "utf8").trim().split("\n").map((line) => {
        const [, type, size, mtime, path] = /^(\S) (\d+) (\S+) (.*)$/.exec(line) ?? [];
        return [path, { type: type === "d" ? "dir" : "file", size: type === "d" ? null : Number(size), mtime: Math.floor(Number(mtime)) }];
      });
      assert.deepEqual(project(mine, ["type", "size", "mtime"]), Object.fromEntries(seen));
      const sums = readFileSync(`${img}.sha256`, "utf8").trim().split("\n").map((line) => [line.slice(68), line.slice(0, 64)]);
      assert.deepEqual(
        Object.fromEntries([...mine].filter(([, e]) => e.type === "file").map(([p, e]) => [p, e.content])),
        Object.fromEntries(sums),
      );
    });
  }
});
