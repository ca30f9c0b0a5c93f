/**
 * restore onto loop devices (root): what lands is the image, byte for byte
 * (cmp), whatever its format (raw, zstd, qcow2 made by zstd and qemu-img);
 * what must not be written is refused with one line and left unchanged
 * (sha256sum before and after); a GPT moved to a bigger disk passes
 * `sgdisk -v`; --verify catches a byte changed behind platter's back.
 */
import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import { mkdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, test, type TestContext } from "node:test";
import { kernelLacks, needs } from "../helpers/env.js";
import { FIXTURES } from "../helpers/fixtures.js";
import { CLI, platter, run, sh, untilReady } from "../helpers/run.js";
import { tempDir } from "../helpers/tmp.js";
import { attach, sha256, withUndo } from "./loop-devices.js";

const MiB = 1 << 20;

/** A 16 MiB MBR disk (sfdisk): two partitions of random data with zero gaps, the last 4 MiB zero. */
async function makeImage(dir: string): Promise<string> {
  const img = join(dir, "disk.img");
  await sh(`truncate -s 16M ${img} && printf 'start=2048, size=8192, type=83\\nstart=12288, size=8192, type=83\\n' | sfdisk -q ${img}`);
  await sh(`dd if=/dev/urandom of=${img} bs=1M seek=1 count=3 conv=notrunc status=none`);
  await sh(`dd if=/dev/urandom of=${img} bs=1M seek=7 count=2 conv=notrunc status=none`);
  return img;
}

/** A loop device over `size` bytes of 0xAA: a skipped zero run would show. */
async function garbageDevice(dir: string, name: string, size: number): Promise<string> {
  const file = join(dir, name);
  await sh(`head -c ${size} /dev/zero | tr '\\0' '\\252' > ${file}`);
  return attach(file);
}

/** BACKING served read-only by badsectorfs with every read held 5 ms (torn down when the test ends). */
async function slowDevice(t: TestContext, backing: string): Promise<string> {
  const script = join(FIXTURES, "badsector-device.sh");
  const dev = (await sh(`${script} up ${backing} -s 5`)).trim();
  t.after(() => run("bash", [script, "down", dev]).then(() => undefined));
  return dev;
}

/** Skip reason when device-mapper is not there to build a holder with; false when it is. */
function deviceMapper(): string | false {
  const missing = needs("dmsetup");
  if (missing) return missing;
  spawnSync("modprobe", ["dm_mod"], { stdio: "ignore" }); // loads it where the kernel has it as a module
  let misc = "";
  try {
    misc = readFileSync("/proc/misc", "utf8");
  } catch {
    // no /proc/misc: no device-mapper either
  }
  return /device-mapper/.test(misc) ? false : kernelLacks("device-mapper");
}

const refused = (r: { code: number; stderr: string }, message: RegExp) => {
  assert.equal(r.code, 2, r.stderr);
  assert.match(r.stderr, message);
  assert.equal(r.stderr.split("\n").length, 2, `one line: ${r.stderr}`);
};

describe("restore to a loop device", { skip: needs("root", "loop", "losetup", "sfdisk", "zstd", "qemu-img", "cmp") }, () => {
  test("raw, .zst and .qcow2 images land byte for byte (cmp), zero runs written over old data", async () => {
    const dir = tempDir();
    const img = await makeImage(dir);
    await sh(`zstd -q ${img} -o ${img}.zst && qemu-img convert -O qcow2 ${img} ${img}.qcow2`);
    const dev = await garbageDevice(dir, "target.bin", 16 * MiB);
    for (const image of [img, `${img}.zst`, `${img}.qcow2`]) {
      await sh(`dd if=/dev/urandom of=${dev} bs=1M count=16 oflag=direct status=none`);
      const r = await platter(["restore", image, dev, "--yes", "--json"]);
      assert.equal(r.code, 0, r.stderr);
      const result = JSON.parse(r.stdout);
      assert.equal(result.bytesWritten, 16 * MiB);
      assert.equal(result.bytesSkipped, 0);
      await sh(`cmp ${img} ${dev}`);
    }
  });

  test("--discard: zero runs skipped once the device reads zeros where discarded; the result is still the image", async () => {
    const dir = tempDir();
    const img = await makeImage(dir);
    const dev = await garbageDevice(dir, "target.bin", 20 * MiB);
    const r = await platter(["restore", img, dev, "--yes", "--discard", "--json"]);
    assert.equal(r.code, 0, r.stderr);
    const result = JSON.parse(r.stdout);
    assert.ok(result.bytesSkipped >= 8 * MiB, `skipped ${result.bytesSkipped}`);
    assert.equal(result.bytesWritten + result.bytesSkipped, 16 * MiB);
    await sh(`cmp -n ${16 * MiB} ${img} ${dev}`);
    // verify agrees; the disk's 4 MiB past the image are not the image's business.
    const v = await platter(["verify", img, dev]);
    assert.equal(v.code, 0, v.stdout + v.stderr);
    assert.match(v.stdout, /sizes differ: .* is 4194304 byte\(s\) longer .*, not compared \(a disk is bigger than its image\)\n$/);
  });

  test("without a terminal and without --yes: refused in one line, nothing written", async () => {
    const dir = tempDir();
    const img = await makeImage(dir);
    const dev = await garbageDevice(dir, "target.bin", 16 * MiB);
    const before = await sha256(dev);
    refused(await platter(["restore", img, dev]), new RegExp(`^platter: refusing to overwrite ${dev} without confirmation: no terminal to ask on; add --yes\\n`));
    assert.equal(await sha256(dev), before);
  });

  test("a mounted device, a device with a mounted partition (both read-only), active swap: refused, unchanged", { skip: needs("mkfs.ext4", "partx", "mkswap", "swapon") }, async () => {
    const dir = tempDir();
    const img = await makeImage(dir);
    const mnt = join(dir, "mnt");
    mkdirSync(mnt);

    const fsDev = await garbageDevice(dir, "fs.bin", 16 * MiB);
    await sh(`mkfs.ext4 -q -F ${fsDev}`);
    // Read-only: a read-write ext4 keeps writing on its own (lazy inode-table init, journal), and the device must stay still.
    await withUndo(`mount -o ro ${fsDev} ${mnt}`, `umount ${mnt}`);
    let before = await sha256(fsDev);
    refused(await platter(["restore", img, fsDev, "--yes"]), new RegExp(`^platter: refusing to write to ${fsDev}: it is mounted on ${mnt}\\n`));
    assert.equal(await sha256(fsDev), before);
    await sh(`umount ${mnt}`);

    const disk = join(dir, "parted.bin");
    await sh(`cp ${img} ${disk}`);
    const partedDev = await attach(disk, "-P");
    await run("partx", ["-a", partedDev]); // no udev here: make sure the partitions exist
    await sh(`mkfs.ext4 -q -F ${partedDev}p1`);
    await withUndo(`mount -o ro ${partedDev}p1 ${mnt}`, `umount ${mnt}`);
    before = await sha256(partedDev);
    refused(await platter(["restore", img, partedDev, "--yes"]), new RegExp(`^platter: refusing to write to ${partedDev}: it is mounted on ${mnt}\\n`));
    assert.equal(await sha256(partedDev), before);
    await sh(`umount ${mnt}`);

    const swapDev = await garbageDevice(dir, "swap.bin", 16 * MiB);
    await sh(`mkswap -q ${swapDev} >/dev/null`);
    await withUndo(`swapon ${swapDev}`, `swapoff ${swapDev}`);
    before = await sha256(swapDev);
    refused(await platter(["restore", img, swapDev, "--yes"]), new RegExp(`^platter: refusing to write to ${swapDev}: it is in use as swap \\(${swapDev}\\)\\n`));
    assert.equal(await sha256(swapDev), before);
    await sh(`swapoff ${swapDev}`);
  });

  test("a device under another loop device: refused, unchanged", async () => {
    const dir = tempDir();
    const img = await makeImage(dir);
    const lower = await garbageDevice(dir, "lower.bin", 16 * MiB);
    const upper = await attach(lower);
    const before = await sha256(lower);
    refused(await platter(["restore", img, lower, "--yes"]), new RegExp(`^platter: refusing to write to ${lower}: it is the backing device of ${upper} \\(detach it first: losetup -d ${upper}\\)\\n`));
    assert.equal(await sha256(lower), before);
  });

  test("on a terminal (script): the device is shown and only \"yes\" overwrites it", { skip: needs("script") }, async () => {
    const dir = tempDir();
    const img = await makeImage(dir);
    const backing = join(dir, "target.bin");
    const dev = await garbageDevice(dir, "target.bin", 16 * MiB);
    const before = await sha256(dev);
    const onTerminal = (answer: string) => run("script", ["-qec", `"${process.execPath}" "${CLI}" restore ${img} ${dev} --quiet`, "/dev/null"], { input: `${answer}\n` });
    const no = await onTerminal("no");
    assert.equal(no.code, 2, no.stdout);
    const screen = no.stdout.replace(/\r/g, "");
    assert.match(screen, new RegExp(`^${dev}: 16 MiB \\(16777216 bytes\\)\n  loop device over ${backing}\n  no partitions\nEverything on ${dev} will be replaced by ${img}\\.\n`, "m"));
    assert.match(screen, new RegExp(`platter: not confirmed: nothing was written to ${dev}`));
    assert.equal(await sha256(dev), before);
    const yes = await onTerminal("yes");
    assert.equal(yes.code, 0, yes.stdout);
    await sh(`cmp ${img} ${dev}`);
  });

  test("a device holding the running system (mounted read-only on /boot, in a private mount namespace): refused, unchanged", { skip: needs("unshare", "mkfs.ext4", "/boot") }, async () => {
    const dir = tempDir();
    const img = await makeImage(dir);
    const dev = await garbageDevice(dir, "boot.bin", 16 * MiB);
    await sh(`mkfs.ext4 -q -F ${dev}`);
    const before = await sha256(dev);
    const r = await run("unshare", ["--mount", "--propagation", "private", "sh", "-c", `mount -o ro ${dev} /boot && exec "${process.execPath}" "${CLI}" restore ${img} ${dev} --yes`]);
    refused(r, new RegExp(`^platter: refusing to write to ${dev}: it is holding the running system \\(/boot is mounted from it\\)\n`));
    assert.equal(await sha256(dev), before);
  });

  test("a device under a device-mapper device (dmsetup): refused, unchanged", { skip: deviceMapper() }, async () => {
    const dir = tempDir();
    const img = await makeImage(dir);
    const dev = await garbageDevice(dir, "pv.bin", 16 * MiB);
    const name = `platter-test-${process.pid}`;
    await withUndo(`dmsetup create --noudevsync ${name} --table "0 32768 linear ${dev} 0"`, `dmsetup remove --noudevsync ${name}`);
    const before = await sha256(dev);
    refused(await platter(["restore", img, dev, "--yes"]), new RegExp(`^platter: refusing to write to ${dev}: it is in use by /dev/dm-\\d+ \\(a device-mapper, LVM or md device built on it\\)\n`));
    assert.equal(await sha256(dev), before);
  });

  test("too small for the partitions: refused; smaller than the image but past the last partition: written, with a warning", async () => {
    const dir = tempDir();
    const img = await makeImage(dir); // partitions end at 10 MiB
    const tiny = await garbageDevice(dir, "tiny.bin", 8 * MiB);
    const before = await sha256(tiny);
    refused(await platter(["restore", img, tiny, "--yes"]), new RegExp(`^platter: ${tiny} is too small: 8 MiB \\(8388608 bytes\\), and the image's partitions need 10 MiB \\(10485760 bytes\\)\\n`));
    assert.equal(await sha256(tiny), before);
    const small = await garbageDevice(dir, "small.bin", 12 * MiB);
    const r = await platter(["restore", img, small, "--yes", "--quiet"]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, /warning: .* is smaller than the image \(16 MiB\): the last 4 MiB, past every partition, are not written/);
    await sh(`cmp -n ${12 * MiB} ${img} ${small}`);
  });

  test("a GPT image (sgdisk) onto a bigger device: backup moved to the end, sgdisk -v finds no problems", { skip: needs("sgdisk") }, async () => {
    const dir = tempDir();
    const img = join(dir, "gpt.img");
    await sh(`truncate -s 16M ${img} && sgdisk -n1:2048:+4M -t1:ef00 -n2:0:+6M -t2:8300 ${img} >/dev/null`);
    await sh(`dd if=/dev/urandom of=${img} bs=1M seek=1 count=2 conv=notrunc status=none`);
    const dev = await garbageDevice(dir, "big.bin", 40 * MiB);
    const r = await platter(["restore", img, dev, "--yes", "--verify"]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, new RegExp(`moved the backup GPT to the end of ${dev} \\(40 MiB\\)`));
    const verify = await run("sgdisk", ["-v", dev]);
    assert.equal(verify.code, 0, verify.stdout + verify.stderr);
    assert.match(verify.stdout, /No problems found/);
    // The partitions' bytes are the image's.
    await sh(`cmp -i ${MiB} -n ${10 * MiB} ${img} ${dev}`);
    const parts = JSON.parse((await platter(["parts", dev, "--json"])).stdout);
    assert.deepEqual(parts.warnings, []);
    assert.equal(parts.partitions.length, 2);
  });

  test("--verify reads the device back and catches a byte changed behind platter's back", async () => {
    const dir = tempDir();
    const img = await makeImage(dir);
    const backing = join(dir, "target.bin");
    const dev = await garbageDevice(dir, "target.bin", 16 * MiB);
    const offset = 5 * MiB + 4097; // inside the data of partition 1
    const original = Number((await sh(`od -An -tu1 -j ${offset} -N1 ${img}`)).trim());
    const flipped = (original ^ 0xff).toString(8).padStart(3, "0");
    // The loop device reads its backing file through the page cache: a write to the file is what the device returns next.
    const hook = `printf '\\${flipped}' | dd of=${backing} bs=1 seek=${offset} conv=notrunc status=none`;
    const r = await platter(["restore", img, dev, "--yes", "--verify"], { env: { PLATTER_TEST_BEFORE_VERIFY: hook } });
    assert.equal(r.code, 1, r.stderr);
    const hex = (n: number) => n.toString(16).padStart(2, "0");
    assert.match(
      r.stderr,
      new RegExp(`^platter: verify failed: ${dev} differs from the image at offset ${offset} \\(wrote 0x${hex(original)}, read back 0x${hex(original ^ 0xff)}\\)`, "m"),
    );
    const clean = await platter(["restore", img, dev, "--yes", "--verify"]);
    assert.equal(clean.code, 0, clean.stderr);
    assert.match(clean.stderr, /verified: 16 MiB read back/);
  });

  const slowDrive = { skip: needs("fuse", "gcc", "make", "pkg-config") };
  test("SIGTERM while writing: exit 143 and a line saying the device is partially written", slowDrive, async (t) => {
    const dir = tempDir();
    const backing = join(dir, "random.img");
    await sh(`head -c ${48 * MiB} /dev/urandom > ${backing}`);
    // The image comes from a slow drive (every read waits 5 ms): a fast target once took all 48 MiB in the
    // 25 ms between the first progress line and the signal, and the restore ended complete.
    const img = await slowDevice(t, backing);
    const dev = await garbageDevice(dir, "target.bin", 48 * MiB);
    const child = spawn(process.execPath, [CLI, "restore", img, dev, "--yes", "--progress"], { stdio: ["ignore", "pipe", "pipe"] });
    let stderr = "";
    child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
    const closed = new Promise<number | null>((resolve) => child.on("close", (code) => resolve(code)));
    // Held still at its first progress line, so the signal lands while most of the image is still to write.
    assert.ok(await untilReady(child, () => stderr.includes("writing")), stderr);
    child.kill("SIGSTOP");
    child.kill("SIGTERM");
    child.kill("SIGCONT");
    assert.equal(await closed, 143, stderr);
    assert.match(stderr, new RegExp(`platter: interrupted: ${dev} is partially written \\(.* of 48 MiB\\) and does not hold the image; restore again\\n$`));
  });
});
