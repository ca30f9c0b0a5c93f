/**
 * capture refuses to write where it would destroy its source or a mounted
 * file system. Uses loop devices (root); each one is detached at the end.
 */
import assert from "node:assert/strict";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, describe, test } from "node:test";
import { needs } from "../helpers/env.js";
import { platter, run, sh } from "../helpers/run.js";
import { tempDir } from "../helpers/tmp.js";

const loops: string[] = [];
const mounts: string[] = [];
after(async () => {
  for (const m of mounts.reverse()) await run("umount", [m]);
  for (const l of loops.reverse()) await run("losetup", ["-d", l]);
});

async function attach(file: string, ...flags: string[]): Promise<string> {
  const dev = (await sh(`losetup -f --show ${flags.join(" ")} ${file}`)).trim();
  loops.push(dev);
  return dev;
}

async function detach(dev: string): Promise<void> {
  await sh(`losetup -d ${dev}`);
  loops.splice(loops.indexOf(dev), 1);
}

const refused = (r: { code: number; stderr: string }, message: RegExp) => {
  assert.equal(r.code, 2, r.stderr);
  assert.match(r.stderr, message);
  assert.equal(r.stderr.split("\n").length, 2, "one line");
};

describe("capture refuses dangerous destinations (loop devices)", { skip: needs("root", "loop", "losetup", "sfdisk", "partx", "mkfs.ext4") }, () => {
  test("a partition of SOURCE, or the disk of a SOURCE partition: refused; a sibling partition is fine", async () => {
    const dir = tempDir();
    const disk = join(dir, "disk.img");
    await sh(`truncate -s 12M ${disk} && printf 'label: dos\\nstart=2048, size=8192, type=83\\nstart=10240, size=8192, type=83\\n' | sfdisk -q ${disk}`);
    const dev = await attach(disk, "-P");
    await run("partx", ["-a", dev]); // no udev here: make sure the partitions exist
    const [p1, p2] = [`${dev}p1`, `${dev}p2`];
    refused(await platter(["capture", dev, p1]), new RegExp(`^platter: refusing to write to ${p1}: it overlaps the source ${dev}\\n`));
    refused(await platter(["capture", p1, dev]), new RegExp(`^platter: refusing to write to ${dev}: it overlaps the source ${p1}\\n`));
    await sh(`dd if=/dev/urandom of=${p1} bs=1M count=4 status=none`);
    const ok = await platter(["capture", p1, p2, "--hash", "sha256", "--quiet"]);
    assert.equal(ok.code, 0, ok.stderr);
    await sh(`cmp ${p1} ${p2}`);
    await run("partx", ["-d", dev]);
    await detach(dev);
  });

  test("a mounted DEST is refused; so is a file stored on a file system of SOURCE", async () => {
    const dir = tempDir();
    const fs = join(dir, "fs.img");
    await sh(`truncate -s 16M ${fs} && mkfs.ext4 -q -F ${fs}`);
    const dev = await attach(fs);
    const mnt = join(dir, "mnt");
    mkdirSync(mnt);
    await sh(`mount ${dev} ${mnt}`);
    mounts.push(mnt);
    const small = join(dir, "small.img");
    writeFileSync(small, Buffer.alloc(1 << 20, 5));
    refused(await platter(["capture", small, dev]), new RegExp(`^platter: refusing to write to ${dev}: it is mounted on ${mnt}\\n`));
    // SOURCE is the device holding DEST's file system.
    const r = await platter(["capture", dev, join(mnt, "image.img")]);
    refused(r, new RegExp(`refusing to write to ${mnt}/image.img: it is stored on the source ${dev}\\n`));
    await sh(`umount ${mnt}`);
    mounts.pop();
    await detach(dev);
  });

  test("a loop device and its backing file are the same bytes: refused both ways", async () => {
    const dir = tempDir();
    const file = join(dir, "backing.img");
    writeFileSync(file, Buffer.alloc(2 << 20, 1));
    const dev = await attach(file);
    refused(await platter(["capture", dev, file]), /it overlaps the source/);
    refused(await platter(["capture", file, dev]), /it overlaps the source/);
    assert.ok(readFileSync(file).equals(Buffer.alloc(2 << 20, 1)));
    await detach(dev);
  });

  test("DEST that backs a loop device (mounted or not), or a loop device under another (mounted) one: refused, untouched", async () => {
    const dir = tempDir();
    const src = join(dir, "src.img");
    writeFileSync(src, Buffer.alloc(4 << 20, 7));
    // A file backing a loop device that nothing mounts.
    const plain = join(dir, "plain.img");
    writeFileSync(plain, Buffer.alloc(4 << 20, 1));
    const plainLoop = await attach(plain);
    refused(await platter(["capture", src, plain]), new RegExp(`^platter: refusing to write to ${plain}: it is the backing file of ${plainLoop} \\(detach it first: losetup -d ${plainLoop}\\)\n`));
    assert.ok(readFileSync(plain).equals(Buffer.alloc(4 << 20, 1)));
    // A file backing a mounted loop device.
    const fsImage = join(dir, "fs.img");
    await sh(`truncate -s 16M ${fsImage} && mkfs.ext4 -q -F ${fsImage}`);
    const fsLoop = await attach(fsImage);
    const mnt = join(dir, "mnt");
    mkdirSync(mnt);
    // Read-only mounts, so the image changes only if platter writes it.
    const before = await sh(`sha256sum < ${fsImage}`);
    await sh(`mount -o ro ${fsLoop} ${mnt}`);
    mounts.push(mnt);
    refused(await platter(["capture", src, fsImage]), new RegExp(`^platter: refusing to write to ${fsImage}: it is the backing file of ${fsLoop}, mounted on ${mnt} `));
    await sh(`umount ${mnt}`);
    mounts.pop();
    assert.equal(await sh(`sha256sum < ${fsImage}`), before);
    // A loop device with another loop device on it, mounted.
    const upper = await attach(fsLoop);
    await sh(`mount -o ro ${upper} ${mnt}`);
    mounts.push(mnt);
    refused(await platter(["capture", src, fsLoop]), new RegExp(`^platter: refusing to write to ${fsLoop}: it is the backing device of ${upper}, mounted on ${mnt} `));
    await sh(`umount ${mnt}`);
    mounts.pop();
    assert.equal(await sh(`sha256sum < ${fsImage}`), before);
    await detach(upper);
    await detach(fsLoop);
    await detach(plainLoop);
    // Detached, the same files are ordinary DESTs again.
    const ok = await platter(["capture", src, plain, "-q"]);
    assert.equal(ok.code, 0, ok.stderr);
    await sh(`cmp ${src} ${plain}`);
  });

  test("a block-device DEST: written in place, refused when smaller than the capture", async () => {
    const dir = tempDir();
    const target = join(dir, "target.img");
    await sh(`truncate -s 4M ${target}`);
    const dev = await attach(target);
    const src = join(dir, "src.img");
    await sh(`head -c 3M /dev/urandom > ${src}`);
    const r = await platter(["capture", src, dev, "--hash", "sha256", "--json"]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(JSON.parse(r.stdout).hashes.sha256, (await sh(`sha256sum ${src}`)).split(" ")[0]);
    await sh(`cmp -n 3145728 ${src} ${dev}`);
    const big = join(dir, "big.img");
    await sh(`truncate -s 5M ${big}`);
    const tooBig = await platter(["capture", big, dev]);
    assert.equal(tooBig.code, 2);
    assert.match(tooBig.stderr, new RegExp(`^platter: ${dev} holds 4194304 bytes, less than the 5242880 bytes to capture\\n$`));
    await detach(dev);
  });
});
