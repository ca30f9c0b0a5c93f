import assert from "node:assert/strict";
import { test } from "node:test";
import { needs } from "../helpers/env.js";
import { platter, run } from "../helpers/run.js";
import { referenceIso } from "../fs/iso9660/helpers.js";

test("info --json on a raw disk image: format, virtual size, file size, no filesystem at its start", async () => {
  const r = await platter(["info", "examples/disk.img", "--json"]);
  assert.equal(r.code, 0, r.stderr);
  const info = JSON.parse(r.stdout);
  assert.deepEqual([info.format, info.virtualSize, info.fileSize, info.sectorSize, info.filesystem], ["raw", 4194304, 4194304, 512, null]);
});

test("info on an xorriso-made ISO shows the ids isoinfo -d shows", { skip: needs("xorriso", "isoinfo", "blkid") }, async () => {
  const iso = await referenceIso("xorriso");
  const info = JSON.parse((await platter(["info", iso, "--json"])).stdout);
  const d = (await run("isoinfo", ["-d", "-i", iso])).stdout;
  const field = (name: string) => new RegExp(`^${name}: ?(.*)$`, "m").exec(d)?.[1].trim();
  assert.equal(info.filesystem, "iso9660");
  assert.equal(info.iso9660.volumeId, field("Volume id"));
  assert.equal(info.iso9660.dataPreparerId, field("Data preparer id"));
  assert.equal(info.iso9660.volumeBlocks, Number(field("Volume size is")));
  assert.deepEqual(info.iso9660.joliet, { level: 3, volumeId: "FIXTURE_ISO" });
  assert.equal(info.iso9660.rockRidge, "RRIP_1991A");
  assert.equal(info.iso9660.bootCatalog, null);
  const blkid = (await run("blkid", ["-p", "-o", "export", iso])).stdout;
  assert.equal(info.label, /^LABEL=(.*)$/m.exec(blkid)?.[1]);
  assert.equal(info.uuid, /^UUID=(.*)$/m.exec(blkid)?.[1]);
  const text = (await platter(["info", iso])).stdout;
  assert.match(text, /^filesystem: +iso9660, label "FIXTURE_ISO", UUID [0-9-]+$/m);
  assert.match(text, /^ {2}volume id: +FIXTURE_ISO$/m);
});

test("info on a missing file is one line on stderr and exit 1", async () => {
  const r = await platter(["info", "/nonexistent.iso"]);
  assert.equal(r.code, 1);
  assert.equal(r.stderr, "platter: /nonexistent.iso: no such file or directory\n");
});
