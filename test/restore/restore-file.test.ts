/**
 * restore to a regular file: written under a temporary name and renamed,
 * zero runs left as holes, an existing file replaced only with --force.
 * No root needed.
 */
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { existsSync, readdirSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, test } from "node:test";
import { needs } from "../helpers/env.js";
import { CLI, platter, sh, untilReady } from "../helpers/run.js";
import { tempDir } from "../helpers/tmp.js";

const MiB = 1 << 20;

describe("restore to a file", { skip: needs("zstd", "cmp") }, () => {
  test("a .zst image to a new file: the same bytes (cmp), its zero runs holes", async () => {
    const dir = tempDir();
    const img = join(dir, "disk.img");
    await sh(`truncate -s 32M ${img} && dd if=/dev/urandom of=${img} bs=1M seek=4 count=4 conv=notrunc status=none && zstd -q ${img} -o ${img}.zst`);
    const out = join(dir, "out.img");
    const r = await platter(["restore", `${img}.zst`, out, "--json"]);
    assert.equal(r.code, 0, r.stderr);
    const result = JSON.parse(r.stdout);
    assert.deepEqual([result.from, result.bytesWritten, result.bytesSkipped], [["zstd"], 4 * MiB, 28 * MiB]);
    await sh(`cmp ${img} ${out}`);
    assert.ok(statSync(out).blocks * 512 <= 5 * MiB, `allocated ${statSync(out).blocks * 512}`);
  });

  test("an existing file is replaced only with --force; a folder is refused", async () => {
    const dir = tempDir();
    const img = join(dir, "disk.img");
    writeFileSync(img, Buffer.alloc(MiB, 7));
    const out = join(dir, "out.img");
    writeFileSync(out, "precious");
    const r = await platter(["restore", img, out]);
    assert.equal(r.code, 2);
    assert.equal(r.stderr, `platter: ${out} exists; add --force to replace it (or name a block device)\n`);
    assert.equal(await sh(`cat ${out}`), "precious");
    assert.equal((await platter(["restore", img, out, "--force", "--verify", "--quiet"])).code, 0);
    await sh(`cmp ${img} ${out}`);
    const folder = await platter(["restore", img, dir]);
    assert.equal(folder.code, 2);
    assert.equal(folder.stderr, `platter: ${dir}: is a directory; name a block device or an image file to write\n`);
  });

  test("the image itself as TARGET: refused", async () => {
    const dir = tempDir();
    const img = join(dir, "disk.img");
    writeFileSync(img, Buffer.alloc(MiB, 7));
    const r = await platter(["restore", img, img, "--force"]);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /^platter: refusing to write TARGET .*: it is the source /);
  });

  test("interrupted: no TARGET, no temporary file left, exit 130", async () => {
    const dir = tempDir();
    const img = join(dir, "random.img");
    await sh(`head -c ${128 * MiB} /dev/urandom > ${img}`);
    const out = join(dir, "out.img");
    const child = spawn(process.execPath, [CLI, "restore", img, out, "--progress"], { stdio: ["ignore", "pipe", "pipe"] });
    let stderr = "";
    // Held still the moment its first progress line arrives: a file target takes the whole image in the
    // 25 ms a polling wait can take, and the restore then ended complete before the signal.
    child.stderr.on("data", (d: Buffer) => {
      if (!stderr.includes("writing") && d.toString().includes("writing")) child.kill("SIGSTOP");
      stderr += d.toString();
    });
    const closed = new Promise<number | null>((resolve) => child.on("close", (code) => resolve(code)));
    assert.ok(await untilReady(child, () => stderr.includes("writing")), stderr);
    child.kill("SIGINT");
    child.kill("SIGCONT");
    assert.equal(await closed, 130, stderr);
    assert.match(stderr, new RegExp(`platter: interrupted: ${out} was not written\\n$`));
    assert.equal(existsSync(out), false);
    assert.deepEqual(readdirSync(dir), ["random.img"]);
  });
});
