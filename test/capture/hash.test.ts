import assert from "node:assert/strict";
import { join } from "node:path";
import { test } from "node:test";
import { readFileSync } from "node:fs";
import { blockedIn, spawnPlatter, WAITS_ON_PIPE } from "../helpers/blocked.js";
import { CLI, platter, sh } from "../helpers/run.js";
import { tempDir } from "../helpers/tmp.js";

test("platter hash equals sha256sum and md5sum, also on a sparse file", async () => {
  const dir = tempDir();
  const path = join(dir, "img");
  await sh(`truncate -s 40M ${path} && dd if=/dev/urandom of=${path} bs=64K count=3 seek=100 conv=notrunc status=none`);
  const r = await platter(["hash", path, "--hash", "sha256"]);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout, await sh(`sha256sum ${path}`));
  const j = await platter(["hash", path, "--hash", "md5,sha1", "--json"]);
  const digests = JSON.parse(j.stdout);
  assert.equal(digests.md5, (await sh(`md5sum ${path}`)).split(" ")[0]);
  assert.equal(digests.sha1, (await sh(`sha1sum ${path}`)).split(" ")[0]);
});

test("platter hash of a large cold file (worker per algorithm, direct reads, a hole, an odd end) equals the coreutils sums", async () => {
  const dir = tempDir();
  const path = join(dir, "big.img");
  // 96 MiB + 777 bytes: data, a 40 MiB hole, data; written back and dropped from the page cache.
  await sh(
    `head -c 30M /dev/urandom > ${path} && truncate -s 70M ${path} && head -c $((26 * 1048576 + 777)) /dev/urandom >> ${path}` +
      ` && sync ${path} && dd if=${path} iflag=nocache count=0 status=none`,
  );
  const j = await platter(["hash", path, "--hash", "md5,sha1,sha256,sha512", "--json"]);
  assert.equal(j.code, 0, j.stderr);
  const digests = JSON.parse(j.stdout);
  assert.deepEqual(Object.keys(digests), ["md5", "sha1", "sha256", "sha512"]);
  for (const [name, tool] of [["md5", "md5sum"], ["sha1", "sha1sum"], ["sha256", "sha256sum"], ["sha512", "sha512sum"]]) {
    assert.equal(digests[name], (await sh(`${tool} ${path}`)).split(" ")[0], name);
  }
});

test("platter hash: missing file and unknown algorithm are one-line errors", async () => {
  const missing = await platter(["hash", "/nonexistent.img"]);
  assert.equal(missing.code, 1);
  assert.equal(missing.stderr, "platter: /nonexistent.img: no such file or directory\n");
  const bad = await platter(["hash", "/dev/null", "--hash", "crc64"]);
  assert.equal(bad.code, 2);
  assert.match(bad.stderr, /^platter: unknown hash 'crc64'/);
});

test("platter hash reads a stream to its end, as sha256sum does: stdin as a pipe (- and /dev/stdin) or a socket, a FIFO, a process substitution, a character device", async () => {
  const dir = tempDir();
  const img = join(dir, "img");
  // Over two of hashStream's 4 MiB buffers, and an odd end.
  await sh(`head -c ${(9 << 20) + 333} /dev/urandom > ${img} && mkfifo ${dir}/fifo`);
  const expected = (await sh(`sha256sum < ${img}`)).split(" ")[0];
  const line = (name: string) => `${expected}  ${name}\n`;
  assert.equal(await sh(`cat ${img} | node ${CLI} hash -`), line("-"));
  assert.equal(await sh(`cat ${img} | node ${CLI} hash /dev/stdin`), line("/dev/stdin"));
  // node's spawn makes stdin a socket, which cannot be opened by path: /dev/stdin is read as the descriptor it is.
  const socket = await platter(["hash", "/dev/stdin"], { input: readFileSync(img) });
  assert.equal(socket.stdout, line("/dev/stdin"), socket.stderr);
  assert.equal(await sh(`cat ${img} > ${dir}/fifo & node ${CLI} hash ${dir}/fifo`), line(`${dir}/fifo`));
  assert.match(await sh(`node ${CLI} hash <(cat ${img}) --hash md5,sha256`), new RegExp(`^MD5 \\(/dev/fd/\\d+\\) = ${(await sh(`md5sum < ${img}`)).split(" ")[0]}\\nSHA256 \\(/dev/fd/\\d+\\) = ${expected}\\n$`));
  assert.equal(await sh(`node ${CLI} hash /dev/null`), await sh("sha256sum /dev/null"));
});

test("platter hash on a FIFO no one writes to: Ctrl-C (SIGINT) ends it, non-zero", async () => {
  const dir = tempDir();
  await sh(`mkfifo ${dir}/fifo`);
  const { child, exited } = spawnPlatter(["hash", `${dir}/fifo`]);
  await blockedIn(child.pid as number, WAITS_ON_PIPE);
  child.kill("SIGINT");
  assert.equal(await exited, 130);
});
