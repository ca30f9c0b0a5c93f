import assert from "node:assert/strict";
import { copyFileSync, mkdirSync, readFileSync, realpathSync } from "node:fs";
import { join } from "node:path";
import { describe, test } from "node:test";
import { needs } from "../helpers/env.js";
import { fixture } from "../helpers/fixtures.js";
import { CLI, platter, run, sh } from "../helpers/run.js";
import { tempDir } from "../helpers/tmp.js";

/** Loop devices backed by `image` (losetup -j): must be the same before and after every mount attempt. */
async function loopsOf(image: string): Promise<string> {
  return (await run("losetup", ["-j", realpathSync(image)])).stdout;
}

describe("platter mount / umount", { skip: needs("losetup", "sfdisk") }, async () => {
  const mbr = await fixture("make-mbr-image.sh", "mbr.img");
  const dir = tempDir();
  const mountPoint = join(dir, "mnt");
  mkdirSync(mountPoint);

  test("--print gives the plain mount command with the partition's offset and size limit", async () => {
    const r = await platter(["mount", mbr, mountPoint, "--part", "1", "--print"]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, `mount -o loop,ro,offset=1048576,sizelimit=16777216 -t ext4 ${mbr} ${mountPoint}\n`);
    const rw = await platter(["mount", mbr, "/mnt/my disk", "--part", "6", "--print", "--rw"]);
    assert.equal(rw.stdout, `mount -o loop,rw,offset=57671680,sizelimit=9437184 -t ext2 ${mbr} '/mnt/my disk'\n`);
  });

  test("mount the ext4 partition of the MBR disk, read a known file, umount: no loop device left (losetup -j)", { skip: needs("root", "loop") }, async () => {
    const before = await loopsOf(mbr);
    const r = await platter(["mount", mbr, mountPoint, "--part", "1"]);
    try {
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stdout, /mounted partition 1 of .* \(ext4 "root"\) read-only on .* via \/dev\/loop\d+/);
      assert.equal(readFileSync(join(mountPoint, "etc/hostname"), "utf8"), "fixture-root\n");
      assert.equal(readFileSync(join(mountPoint, "home/user/hello.txt"), "utf8"), "hello from p1\n");
      // Read-only: the kernel refuses writes.
      await assert.rejects(sh(`touch ${mountPoint}/new`), /Read-only file system/);
      const mounts = readFileSync("/proc/self/mountinfo", "utf8");
      assert.match(mounts, new RegExp(`${realpathSync(mountPoint)} ro,`));
    } finally {
      const u = await platter(["umount", mountPoint]);
      assert.equal(u.code, 0, u.stderr);
      assert.match(u.stdout, /detached \/dev\/loop\d+/);
    }
    assert.equal(await loopsOf(mbr), before);
  });

  test("without --part and several filesystems: the error lists them and asks for --part N (exit 2)", async () => {
    const r = await platter(["mount", mbr, mountPoint]);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /has 3 partitions with filesystems; choose one with --part N:\n\s+1\s+16 MiB\s+ext4\s+root\n\s+5\s+36 MiB\s+vfat\s+DATA\n\s+6\s+9 MiB\s+ext2\s+logical2\n$/);
  });

  test("a kernel without the vfat driver: mount says so and serves the FAT partition through FUSE instead; no loop device left", { skip: needs("root", "loop", "fuse") }, async () => {
    const haveVfat = readFileSync("/proc/filesystems", "utf8").includes("\tvfat\n");
    const before = await loopsOf(mbr);
    const r = await platter(["mount", mbr, mountPoint, "--part", "5"]);
    try {
      assert.equal(r.code, 0, r.stderr);
      if (!haveVfat) {
        assert.match(r.stderr, /this kernel has no vfat driver: mounting through FUSE instead \(read-only\)/);
        assert.match(r.stdout, /^serving partition 5 of .* \(vfat "DATA"\) read-only on .* through FUSE/);
      }
      assert.equal(readFileSync(join(mountPoint, "readme.txt"), "utf8"), "lowercase 8.3 name\n");
    } finally {
      const u = await platter(["umount", mountPoint]);
      assert.equal(u.code, 0, u.stderr);
    }
    assert.equal(await loopsOf(mbr), before);
  });

  test("a mount that fails after the loop device is attached (damaged ext4) detaches it again", { skip: needs("root", "loop") }, async () => {
    const img = join(dir, "damaged.img");
    copyFileSync(mbr, img);
    // Overwrite p1's block group descriptors (block 2 of a 1 KiB-block ext4): the probe still sees ext4, the kernel refuses.
    await sh(`dd if=/dev/urandom of=${img} bs=1024 seek=$((1048576/1024 + 2)) count=1 conv=notrunc status=none`);
    const before = await loopsOf(img);
    const r = await platter(["mount", img, mountPoint, "--part", "1"]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /^platter: mount .* failed: /);
    assert.equal(await loopsOf(img), before);
    assert.equal(before, "");
  });

  test("not root: mount says it uses FUSE instead of a loop device; nothing attached", { skip: needs("root", "setpriv") }, async () => {
    const before = await loopsOf(mbr);
    const r = await run("setpriv", ["--reuid=65534", "--regid=65534", "--clear-groups", process.execPath, CLI, "mount", mbr, mountPoint, "--part", "1"]);
    // Whether the FUSE mount then works depends on /dev/fuse and the mount point (test/mount/fuse.test.ts tests it).
    assert.match(r.stderr, /^platter: warning: not root, so no loop device: mounting through FUSE instead \(read-only\)\n/);
    if (r.code === 0) await run("setpriv", ["--reuid=65534", "--regid=65534", "--clear-groups", process.execPath, CLI, "umount", mountPoint]);
    assert.equal(await loopsOf(mbr), before);
  });

  test("swap and extended partitions, missing mount points, umount of a non-mount: clear usage errors", async () => {
    const gpt = await fixture("make-gpt-image.sh", "gpt.img");
    assert.match((await platter(["mount", gpt, mountPoint, "--part", "3"])).stderr, /is swap space, not a filesystem/);
    assert.match((await platter(["mount", mbr, mountPoint, "--part", "2"])).stderr, /is an extended partition/);
    const missing = await platter(["mount", mbr, join(dir, "nope"), "--part", "1"]);
    if (needs("root") === false) assert.match(missing.stderr, /mount point .*nope does not exist/);
    const u = await platter(["umount", dir]);
    assert.equal(u.code, 2);
    assert.match(u.stderr, /is not a mount point/);
  });
});
