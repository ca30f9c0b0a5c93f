/**
 * An extraction that stops part-way, by Ctrl-C, SIGTERM or a failure, leaves
 * no truncated file looking complete: the files being written are removed
 * (with any hard link already made to them), what was complete stays. And a
 * DIR that cannot be made is one line, not a loop.
 */
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { before, describe, test } from "node:test";
import { CorruptImageError } from "../../src/errors.js";
import { extractTree } from "../../src/fs/extract/index.js";
import { resolvePath } from "../../src/fs/path.js";
import { needs } from "../helpers/env.js";
import { FakeFs } from "../helpers/fake-fs.js";
import { fixture } from "../helpers/fixtures.js";
import { CLI, platter } from "../helpers/run.js";
import { tempDir } from "../helpers/tmp.js";

const MiB = 1 << 20;

describe("an extraction that fails part-way", () => {
  test("removes the file it was writing and the hard link already made to it; complete files stay", async () => {
    const fs = new FakeFs({
      children: [
        ["a-complete.txt", { content: "complete\n" }],
        ["b-corrupt.bin", { content: 8 * MiB, failAfter: 3 * MiB, id: 7, nlink: 2 }],
        ["c-link-to-b", { content: 8 * MiB, failAfter: 3 * MiB, id: 7, nlink: 2 }],
      ],
    });
    const out = join(tempDir(), "out");
    await assert.rejects(extractTree(fs, await resolvePath(fs, "/"), out), CorruptImageError);
    assert.deepEqual(readdirSync(out), ["a-complete.txt"]);
    assert.equal(readFileSync(join(out, "a-complete.txt"), "utf8"), "complete\n");
  });
});

describe("a DIR that cannot be made", { skip: needs("mkfs.ext4", "debugfs") }, () => {
  let img = "";
  before(async () => {
    img = join(await fixture("make-ext-images.sh", "ext"), "small-ext2.img");
  });

  test("/proc/forbidden (mkdir there says ENOENT though /proc exists) is one error line, not an endless retry", async () => {
    for (const dir of ["/proc/forbidden", "/proc/forbidden/deeper"]) {
      const r = await platter(["extract", img, "-o", dir]);
      assert.deepEqual([r.code, r.stderr], [1, "platter: cannot create folder /proc/forbidden: no such file or directory\n"], dir);
    }
  });

  test("a DIR below a file is one error line", async () => {
    const r = await platter(["extract", img, "-o", join(img, "sub", "dir")]);
    assert.deepEqual([r.code, r.stderr], [1, `platter: cannot create folder ${join(img, "sub", "dir")}: not a directory\n`]);
  });
});

describe("extract interrupted by a signal", { skip: needs("mksquashfs") }, () => {
  let img = "";
  before(async () => {
    img = join(await fixture("make-listing-images.sh", "listing"), "big.sqfs");
  });

  /** Start extracting big.sqfs, send `signal` once some of big.bin is written, and wait for the end. */
  function interrupt(out: string, signal: NodeJS.Signals): Promise<{ code: number | null; stderr: string }> {
    return new Promise((resolve, reject) => {
      const child = spawn(process.execPath, [CLI, "extract", img, "-o", out, "--progress"], { stdio: ["ignore", "ignore", "pipe"] });
      let stderr = "";
      let sent = false;
      child.stderr.on("data", (d: Buffer) => {
        stderr += d.toString();
        // "extracting 1/2 files, 12 MiB / 1 GiB (1%)...": done/small.txt is complete, big.bin is being written.
        if (!sent && /extracting 1\/2 files, [1-9][\d.]* MiB \//.test(stderr)) {
          sent = true;
          child.kill(signal);
        }
      });
      child.on("error", reject);
      child.on("close", (code) => resolve({ code, stderr }));
    });
  }

  for (const [signal, code] of [["SIGINT", 130], ["SIGTERM", 143]] as const) {
    test(`${signal}: exit ${code}, the half-written 1 GiB file is removed, the completed folder stays`, async () => {
      const out = join(tempDir(), "out");
      const r = await interrupt(out, signal);
      assert.equal(r.code, code, r.stderr);
      assert.match(r.stderr, new RegExp(`platter: ${signal}: stopping`));
      assert.match(r.stderr, /platter: interrupted: extracted .* into .*; files being written were removed\n$/);
      assert.ok(!existsSync(join(out, "big.bin")), "no truncated big.bin");
      assert.equal(readFileSync(join(out, "done", "small.txt"), "utf8"), "complete\n");
    });
  }
});
