/**
 * ls, cat and extract on ISOs made by xorriso and genisoimage (Rock Ridge +
 * Joliet), through openFilesystem: what `platter extract` writes must equal
 * what `bsdtar -xpf` writes; and a Rock Ridge name of "../x" stays inside DIR.
 */
import assert from "node:assert/strict";
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, test } from "node:test";
import { needs } from "../helpers/env.js";
import { manifest, project } from "../helpers/manifest.js";
import { platter, run, sh } from "../helpers/run.js";
import { tempDir } from "../helpers/tmp.js";
import { referenceIso } from "./iso9660/helpers.js";

for (const tool of ["xorriso", "genisoimage"] as const) {
  describe(`extract of a ${tool} ISO`, { skip: needs(tool, "bsdtar") }, () => {
    test("equals bsdtar -xpf (names, types, modes, owners, sizes, bytes, link targets, mtimes; hard links kept)", async () => {
      const iso = await referenceIso(tool);
      const tmp = tempDir();
      const mine = join(tmp, "platter");
      const theirs = join(tmp, "bsdtar");
      const r = await platter(["extract", iso, "-o", mine, "-q"]);
      assert.equal(r.code, 0, r.stderr);
      await sh(`mkdir ${theirs} && bsdtar -xpf ${iso} -C ${theirs}`);
      const a = manifest(mine);
      const b = manifest(theirs);
      // Fifos and devices: both make them (platter's are checked in extract-special.test.ts).
      const special = (_: string, e: { type: string }) => e.type === "other";
      const fields = ["type", "mode", "uid", "gid", "size", "content"] as const;
      assert.deepEqual(project(a, [...fields], special), project(b, [...fields], special));
      const noLinks = (_: string, e: { type: string }) => e.type === "symlink" || e.type === "other";
      assert.deepEqual(project(a, ["mtime"], noLinks), project(b, ["mtime"], noLinks));
      assert.equal(a.get("links/hardlink-a")?.ino, a.get("links/hardlink-b")?.ino, "hard links extracted as hard links");
    });

    test("cat of the 5 MiB file equals bsdtar -xOf; ls -R lists what bsdtar -tf lists", async () => {
      const iso = await referenceIso(tool);
      const mine = await platter(["cat", iso, "/special/random-5MiB.bin"]);
      const theirs = await run("bsdtar", ["-xOf", iso, "special/random-5MiB.bin"]);
      assert.ok(mine.stdoutBytes.equals(theirs.stdoutBytes));
      const listed = (await platter(["ls", iso, "-R"])).stdout.trim().split("\n").map((p) => p.slice(1)).sort();
      const tar = (await sh(`bsdtar -tf ${iso}`)).trim().split("\n").map((p) => p.replace(/^\.\//, "").replace(/\/$/, "")).filter((p) => p !== "." && p !== "").sort();
      assert.deepEqual(listed, tar);
    });
  });
}

describe("a Rock Ridge NM of ../x", { skip: needs("xorriso") }, () => {
  test("is extracted under a safe name inside DIR", async () => {
    const work = tempDir();
    mkdirSync(join(work, "src"));
    writeFileSync(join(work, "src", "abcd"), "climb\n");
    const iso = join(work, "evil.iso");
    await sh(`xorriso -as mkisofs -quiet -R -o ${iso} ${join(work, "src")} 2>/dev/null`);
    const img = readFileSync(iso);
    // The NM entry: "NM", length 9, version 1, flags 0, then the 4-byte name.
    const at = img.indexOf(Buffer.from([0x4e, 0x4d, 9, 1, 0, ...Buffer.from("abcd")]));
    assert.ok(at > 0, "NM entry found");
    Buffer.from("../x").copy(img, at + 5);
    writeFileSync(iso, img);
    const box = tempDir();
    const r = await platter(["extract", iso, "-o", join(box, "out")]);
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(readdirSync(box), ["out"], "nothing next to DIR");
    const [name] = readdirSync(join(box, "out"));
    assert.ok(!name.includes("/") && name !== ".." && name !== ".", name);
    assert.equal(readFileSync(join(box, "out", name), "utf8"), "climb\n");
  });
});
