/**
 * Images cut by GNU split (as Clonezilla cuts its images): the pieces split
 * wrote open as one image, by the first piece's name or the image's own;
 * a missing or resized piece is refused in one line naming it.
 */
import assert from "node:assert/strict";
import { readdirSync, readFileSync, rmSync, truncateSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, test } from "node:test";
import { CorruptImageError } from "../../src/errors.js";
import { openImage } from "../../src/image/open-image.js";
import { needs } from "../helpers/env.js";
import { prng } from "../helpers/fs-fuzz.js";
import { platter, run } from "../helpers/run.js";
import { tempDir } from "../helpers/tmp.js";

/** `bytes` cut by `split ARGS` into DIR/img.raw.<suffix>; returns the piece names split made, sorted. */
async function splitInto(dir: string, bytes: Buffer, args: string[]): Promise<string[]> {
  const whole = join(dir, "whole");
  writeFileSync(whole, bytes);
  const r = await run("split", [...args, whole, join(dir, "img.raw.")]);
  assert.equal(r.code, 0, r.stderr);
  rmSync(whole);
  return readdirSync(dir).filter((n) => n.startsWith("img.raw.")).sort();
}

async function readWhole(path: string): Promise<{ bytes: Buffer; files: number }> {
  const image = await openImage(path, { indexCache: false });
  try {
    return { bytes: await image.source.read(0, image.source.size), files: image.files.length };
  } finally {
    await image.close();
  }
}

async function rejectsCorrupt(path: string, pattern: RegExp): Promise<void> {
  await assert.rejects(openImage(path, { indexCache: false }), (err: Error) => {
    assert.ok(err instanceof CorruptImageError, `${err.name}: ${err.message}`);
    assert.match(err.message, pattern);
    return true;
  });
}

describe("images cut by split", { skip: needs("split") }, () => {
  const next = prng(7);
  const data = Buffer.from(Array.from({ length: 30_000 }, () => Math.floor(next() * 256)));

  test("split -b 1000: 30 pieces read as the whole, by .aa or by the image's name", async () => {
    const dir = tempDir();
    assert.equal((await splitInto(dir, data, ["-b", "1000"])).length, 30);
    for (const name of ["img.raw.aa", "img.raw"]) {
      const { bytes, files } = await readWhole(join(dir, name));
      assert.equal(files, 30);
      assert.ok(bytes.equals(data), name);
    }
  });

  test("GNU split's widening suffixes (… yy, yz, zaaa, zaab …) are followed", async () => {
    const dir = tempDir();
    const pieces = await splitInto(dir, data, ["-b", "40"]); // 750 pieces: past the 650 of aa..yz
    assert.equal(pieces.length, 750);
    assert.ok(pieces.includes("img.raw.yz") && pieces.includes("img.raw.zaaa") && pieces.includes("img.raw.zacv"), "split widened as expected");
    const { bytes, files } = await readWhole(join(dir, "img.raw.aa"));
    assert.equal(files, 750);
    assert.ok(bytes.equals(data));
  });

  test("split -a 3 (fixed width): aaa, aab …", async () => {
    const dir = tempDir();
    await splitInto(dir, data, ["-a", "3", "-b", "7000"]);
    const { bytes, files } = await readWhole(join(dir, "img.raw.aaa"));
    assert.equal(files, 5);
    assert.ok(bytes.equals(data));
  });

  test("a piece missing from the middle is refused, naming it", async () => {
    const dir = tempDir();
    await splitInto(dir, data, ["-b", "1000"]);
    rmSync(join(dir, "img.raw.ac"));
    await rejectsCorrupt(join(dir, "img.raw.aa"), /img\.raw\.ad: a piece of a split image, but .*img\.raw\.ac before it is missing/);
  });

  test("a piece cut short, or a last piece longer than the others, is refused, naming it", async () => {
    const dir = tempDir();
    await splitInto(dir, data, ["-b", "1000"]);
    truncateSync(join(dir, "img.raw.ab"), 999);
    await rejectsCorrupt(join(dir, "img.raw.aa"), /img\.raw\.ab: 999 bytes, but every piece of a split image but the last holds 1000 bytes/);
    truncateSync(join(dir, "img.raw.ab"), 1000);
    writeFileSync(join(dir, "img.raw.bd"), Buffer.concat([readFileSync(join(dir, "img.raw.bd")), Buffer.alloc(1)]));
    await rejectsCorrupt(join(dir, "img.raw"), /img\.raw\.bd: 1001 bytes, but the last piece of a split image holds 1 to 1000 bytes/);
  });

  test("platter info on the image's name: the pieces' sizes together", async () => {
    const dir = tempDir();
    await splitInto(dir, data, ["-b", "1000"]);
    const r = await platter(["info", join(dir, "img.raw"), "--json"]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(JSON.parse(r.stdout).fileSize, data.length);
  });
});
