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

test("platter hash: missing file and unknown algorithm are one-line errors", async () => {
  const missing = await platter(["hash", "/nonexistent.img"]);
  assert.equal(missing.code, 1);
  assert.equal(missing.stderr, "platter: /nonexistent.img: no such file or directory\n");
  const bad = await platter(["hash", "/dev/null", "--hash", "crc64"]);
  assert.equal(bad.code, 2);
  assert.match(bad.stderr, /^platter: unknown hash 'crc64'/);
});
