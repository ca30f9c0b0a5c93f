/**
 * Capture from a real block device with bad sectors: the project's own
 * badsectorfs (test/fixtures/badsector/) behind a read-only loop device.
 * Needs root, /dev/fuse and loop devices; every device is torn down.
 */
import assert from "node:assert/strict";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, describe, test } from "node:test";
import { capture } from "../../src/capture/capture.js";
import { pattern, range, SECTOR, zeroed } from "../helpers/data.js";
import { needs } from "../helpers/env.js";
import { FIXTURES } from "../helpers/fixtures.js";
import { platter, run, sh } from "../helpers/run.js";
import { tempDir } from "../helpers/tmp.js";

const skip = needs("root", "fuse", "loop", "losetup", "gcc", "pkg-config", "ddrescue", "ddrescuelog");

/** 8 MiB of xorshift bytes with no zero sector. */
function backingImage(dir: string): { path: string; data: Buffer } {
  const data = pattern(8 << 20, 2463534242);
  const path = join(dir, "backing.img");
  writeFileSync(path, data);
  return { path, data };
}

const devices: string[] = [];
after(async () => {
  for (const dev of devices) await run("bash", [join(FIXTURES, "badsector-device.sh"), "down", dev]);
});

/** A fresh device (fresh weak-sector counters) serving `backing` with the given bad sectors. */
async function badDevice(backing: string, specs: string[]): Promise<string> {
  const dev = (await sh(`${join(FIXTURES, "badsector-device.sh")} up ${backing} ${specs.join(" ")}`)).trim();
  devices.push(dev);
  return dev;
}

async function down(dev: string): Promise<void> {
  await sh(`${join(FIXTURES, "badsector-device.sh")} down ${dev}`);
  devices.splice(devices.indexOf(dev), 1);
}

async function badSectors(map: string): Promise<number[]> {
  const out = (await sh(`ddrescuelog -l- -b512 ${map}`)).trim();
  return out ? out.split("\n").map(Number) : [];
}

describe("capture from a block device with bad sectors (badsectorfs + loop)", { skip }, () => {
  // Permanent bad sectors, weak ones that fail twice (lost without retries,
  // as with ddrescue) and once (recovered by trimming/scraping).
  const specs = ["1000", "2000-2007", "3000-3003:2", "6000-6001:1", "9000-9100", "16383"];
  const permanent = [1000, ...range(2000, 2007), ...range(9000, 9100), 16383];

  test("platter recovers the same bytes as GNU ddrescue -d, and ddrescuelog agrees with platter's mapfile; then both retry", async () => {
    const dir = tempDir();
    const { path, data } = backingImage(dir);
    const ours = await badDevice(path, specs);
    const theirs = await badDevice(path, specs);

    const r = await platter(["capture", ours, join(dir, "ours.img"), "--map", join(dir, "ours.map"), "--hash", "sha256", "--json"]);
    assert.equal(r.code, 3, r.stderr);
    await sh(`ddrescue -q -d ${theirs} ${join(dir, "theirs.img")} ${join(dir, "theirs.map")}`);
    // ddrescue leaves its image short when the last sector is bad; platter's is complete (zero-filled).
    await sh(`truncate -s 8M ${join(dir, "theirs.img")} && cmp ${join(dir, "ours.img")} ${join(dir, "theirs.img")}`);
    const firstPass = [...permanent, ...range(3000, 3003)].sort((a, b) => a - b);
    assert.deepEqual(await badSectors(join(dir, "ours.map")), firstPass);
    assert.deepEqual(await badSectors(join(dir, "ours.map")), await badSectors(join(dir, "theirs.map")));
    assert.ok(readFileSync(join(dir, "ours.img")).equals(zeroed(data, firstPass)));
    const summary = JSON.parse(r.stdout);
    assert.equal(summary.bytesUnreadable, firstPass.length * SECTOR);
    assert.equal(summary.complete, true);
    assert.equal(summary.hashes.sha256, (await sh(`sha256sum ${join(dir, "ours.img")}`)).split(" ")[0]);

    // A second run with --retries 1 (ddrescue -r1) reads only the bad sectors; the weak ones come back.
    const again = await platter(["capture", ours, join(dir, "ours.img"), "--map", join(dir, "ours.map"), "--retries", "1", "--quiet"]);
    assert.equal(again.code, 3, again.stderr);
    await sh(`ddrescue -q -d -r1 ${theirs} ${join(dir, "theirs.img")} ${join(dir, "theirs.map")}`);
    await sh(`cmp ${join(dir, "ours.img")} ${join(dir, "theirs.img")}`);
    assert.deepEqual(await badSectors(join(dir, "ours.map")), permanent);
    assert.deepEqual(await badSectors(join(dir, "theirs.map")), permanent);
    await down(ours);
    await down(theirs);
  });

  test("O_DIRECT really bypasses the page cache: one bad sector costs itself, not its 4 KiB page", async () => {
    const dir = tempDir();
    const { path, data } = backingImage(dir);
    const dev = await badDevice(path, ["1001"]);
    const direct = await capture({ source: dev, dest: join(dir, "direct.img"), direct: true });
    const cached = await capture({ source: dev, dest: join(dir, "cached.img"), direct: false });
    await down(dev);
    assert.deepEqual(direct.badRanges, [[1001 * SECTOR, SECTOR]]);
    assert.ok(readFileSync(join(dir, "direct.img")).equals(zeroed(data, [1001])));
    // Through the cache, the kernel reads (and fails) whole 4 KiB pages: sectors 1000-1007.
    assert.deepEqual(cached.badRanges, [[1000 * SECTOR, 4096]]);
  });

  test("dd conv=noerror,sync bs=64K loses the good sectors of each failing block; platter dd gives the same bytes and says how many", async (t) => {
    const dir = tempDir();
    const { path, data } = backingImage(dir);
    const dev = await badDevice(path, ["1000", "2000-2007", "9000-9100"]);
    const bad = [1000, ...range(2000, 2007), ...range(9000, 9100)];
    const lostSectors = (image: Buffer) => {
      let lost = 0;
      for (let s = 0; s < image.length / SECTOR; s++) {
        if (!bad.includes(s) && !image.subarray(s * SECTOR, (s + 1) * SECTOR).equals(data.subarray(s * SECTOR, (s + 1) * SECTOR))) lost++;
      }
      return lost * SECTOR;
    };
    for (const flags of [[], ["iflag=direct"]]) {
      const ops = ["bs=64K", "conv=noerror,sync", ...flags];
      const gnu = await run("dd", [`if=${dev}`, `of=${join(dir, "gnu.img")}`, ...ops]);
      const ours = await platter(["dd", `if=${dev}`, `of=${join(dir, "ours.img")}`, ...ops]);
      assert.equal(ours.code, gnu.code, ours.stderr);
      await sh(`cmp ${join(dir, "gnu.img")} ${join(dir, "ours.img")}`);
      const lost = lostSectors(readFileSync(join(dir, "gnu.img")));
      t.diagnostic(`GNU dd ${ops.join(" ")}: ${lost} good bytes not where they belong in the image (platter capture: 0)`);
      assert.ok(lost > 0);
      if (flags.length > 0) {
        // Direct reads fail whole: the loss is exactly the readable sectors of the failed blocks.
        assert.match(ours.stderr, new RegExp(`of which ${lost} were readable; \`platter capture\` would have kept them`));
      } else {
        // Buffered reads stop short before the bad page: dd pads, skips, and its output drifts.
        assert.match(ours.stderr, /the output is shifted by \d+ bytes/);
      }
    }
    const r = await platter(["capture", dev, join(dir, "capture.img"), "--quiet"]);
    assert.equal(r.code, 3);
    assert.equal(lostSectors(readFileSync(join(dir, "capture.img"))), 0);
    await down(dev);
  });
});
