import assert from "node:assert/strict";
import { join } from "node:path";
import { test } from "node:test";
import { platter, sh } from "../helpers/run.js";
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
