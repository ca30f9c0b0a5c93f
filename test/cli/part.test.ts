/**
 * ls, cat and extract inside partitioned disks: --part N on the MBR fixture
 * (primary ext4, logical FAT32 and ext2) and the GPT fixture (ESP, ext4,
 * swap, exFAT), compared with debugfs and mtools pointed at the same
 * partition's offset; and the choice made without --part.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { before, describe, test } from "node:test";
import { needs } from "../helpers/env.js";
import { fixture } from "../helpers/fixtures.js";
import { manifest, project } from "../helpers/manifest.js";
import { platter, sh } from "../helpers/run.js";
import { tempDir } from "../helpers/tmp.js";

const MTOOLS = "MTOOLS_SKIP_CHECK=1 TZ=UTC LC_ALL=C.UTF-8";

async function offsets(img: string): Promise<Map<number, number>> {
  const parts = JSON.parse((await platter(["parts", img, "--json"])).stdout) as { partitions: Array<{ number: number; offset: number }> };
  return new Map(parts.partitions.map((p) => [p.number, p.offset]));
}

describe("--part: files inside partitioned disks", { skip: needs("sfdisk", "sgdisk", "debugfs", "mcopy", "mkswap", "mkfs.exfat") }, () => {
  let mbr = "";
  let gpt = "";
  before(async () => {
    mbr = await fixture("make-mbr-image.sh", "mbr.img");
    gpt = await fixture("make-gpt-image.sh", "gpt.img");
  });

  test("MBR --part 1 (ext4) and --part 6 (logical ext2): extract equals debugfs rdump at the partition's offset", async () => {
    const at = await offsets(mbr);
    for (const part of [1, 6]) {
      const tmp = tempDir();
      const r = await platter(["extract", mbr, "--part", String(part), "-o", join(tmp, "platter"), "-q"]);
      assert.equal(r.code, 0, r.stderr);
      await sh(`mkdir ${join(tmp, "debugfs")} && debugfs -R "rdump / ${join(tmp, "debugfs")}" "${mbr}?offset=${at.get(part)}"`);
      const fields = ["type", "mode", "uid", "gid", "size", "content"] as const;
      assert.deepEqual(project(manifest(join(tmp, "platter")), [...fields]), project(manifest(join(tmp, "debugfs")), [...fields]));
    }
  });

  test("MBR --part 5 (logical FAT32) and GPT --part 1 (ESP): extract equals mcopy at the partition's offset", async () => {
    for (const [img, part] of [[mbr, 5], [gpt, 1]] as const) {
      const at = await offsets(img);
      const tmp = tempDir();
      const r = await platter(["extract", img, "--part", String(part), "-o", join(tmp, "platter"), "-q"]);
      assert.equal(r.code, 0, r.stderr);
      await sh(`mkdir ${join(tmp, "mcopy")} && ${MTOOLS} mcopy -s -m -n -i "${img}@@${at.get(part)}" '::/*' ${join(tmp, "mcopy")}/`);
      const fields = ["type", "size", "content", "mtime"] as const;
      const mine = project(manifest(join(tmp, "platter")), [...fields]);
      assert.deepEqual(mine, project(manifest(join(tmp, "mcopy")), [...fields]));
      assert.ok(Object.keys(mine).length > 0);
    }
  });

  test("GPT --part 2 cat equals debugfs cat; --part 4 lists the empty exFAT; --part 3 (swap) is a clean error", async () => {
    const at = await offsets(gpt);
    const mine = await platter(["cat", gpt, "--part", "2", "/etc/hostname"]);
    assert.equal(mine.stdout, await sh(`debugfs -R "cat /etc/hostname" "${gpt}?offset=${at.get(2)}" 2>/dev/null`));
    const empty = await platter(["ls", gpt, "--part", "4", "--json"]);
    assert.deepEqual([empty.code, JSON.parse(empty.stdout)], [0, []]);
    const swap = await platter(["ls", gpt, "--part", "3"]);
    assert.equal(swap.code, 1);
    assert.match(swap.stderr, /^platter: partition 3 of .*gpt.img holds swap, which platter cannot read files from/);
  });

  test("without --part: several readable partitions are listed in the error; a whole filesystem image needs none", async () => {
    const r = await platter(["ls", mbr]);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /has 3 partitions with filesystems; choose one with --part N:\n\s+1 .* ext4 .*root\n\s+5 .* vfat .*DATA\n\s+6 .* ext2 .*logical2\n$/);
    const g = await platter(["ls", gpt]);
    assert.equal(g.code, 2);
    assert.match(g.stderr, /has 3 partitions with filesystems/, "swap does not count: platter cannot read it");
    const missing = await platter(["ls", mbr, "--part", "9"]);
    assert.equal(missing.code, 2);
    assert.match(missing.stderr, /has no partition 9 \(partitions: 1, 2, 5, 6\)/);
    const extended = await platter(["ls", mbr, "--part", "2"]);
    assert.equal(extended.code, 2);
    assert.match(extended.stderr, /partition 2 of .* is an extended partition/);
  });

  test("a disk cut short inside its last partition: ls still reads the whole first one, and warns as sfdisk does about the cut one", async () => {
    const tmp = tempDir();
    const cut = join(tmp, "cut.img");
    const at = await offsets(mbr);
    // Keep p1 (ext4) whole and stop in the middle of the extended partition's first logical (p5).
    await sh(`head -c ${(at.get(5) as number) + 4096} ${mbr} > ${cut}`);
    const sfdisk = await sh(`sfdisk -V ${cut} 2>&1 || true`);
    assert.match(sfdisk, /greater than the maximum/, "sfdisk -V notices the cut partition too");
    const r = await platter(["ls", cut, "--part", "1", "/etc"]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, "hostname\n");
    assert.match(r.stderr, /^platter: warning: partition \d .*past the end of the image/m);
  });
});
