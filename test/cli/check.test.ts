/**
 * platter check: qcow2 images damaged on purpose give the counts `qemu-img
 * check` gives (leaks, corruptions), exit 0 clean / 1 problems, and name the
 * partition a damaged cluster belongs to; compressed images are tested by
 * decoding, as `zstd -t` tests them.
 */
import assert from "node:assert/strict";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { before, describe, test } from "node:test";
import { needs } from "../helpers/env.js";
import { l2EntryOf, refcountAt } from "../helpers/qcow2-damage.js";
import { platter, run, sh } from "../helpers/run.js";
import { tempDir } from "../helpers/tmp.js";

const CLUSTER = 65536;

async function qemuCheck(path: string) {
  const r = await run("qemu-img", ["check", "--output=json", path]);
  const q = JSON.parse(r.stdout);
  return { corruptions: q.corruptions ?? 0, leaks: q.leaks ?? 0 };
}

describe("platter check", { skip: needs("qemu-img") }, () => {
  const dir = tempDir();
  let pristine: Buffer;
  /** A guest offset inside partition 2 (ext4 "rootfs" of the example disk, from 2 MiB) that holds data. */
  const IN_ROOTFS = 2 << 20;

  before(async () => {
    await sh(`qemu-img convert -q -f raw -O qcow2 examples/disk.img ${dir}/disk.qcow2`);
    pristine = readFileSync(join(dir, "disk.qcow2"));
  });

  async function damaged(name: string, edit: (image: Buffer) => Promise<void>) {
    const image = Buffer.from(pristine);
    await edit(image);
    const path = join(dir, `${name}.qcow2`);
    writeFileSync(path, image);
    const r = await platter(["check", path, "--json"]);
    return { path, r, report: JSON.parse(r.stdout), qemu: await qemuCheck(path) };
  }

  test("a clean image: exit 0, the counts qemu-img check gives", async () => {
    const r = await platter(["check", join(dir, "disk.qcow2")]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, `No errors were found on ${join(dir, "disk.qcow2")} (qcow2).\n`);
    assert.deepEqual(await qemuCheck(join(dir, "disk.qcow2")), { corruptions: 0, leaks: 0 });
  });

  test("a leaked cluster (no L2 entry uses it): one leak, as qemu-img check counts it; exit 1; no data in doubt", async () => {
    const { r, report, qemu } = await damaged("leak", async (image) => {
      const { at } = await l2EntryOf(image, IN_ROOTFS);
      image.writeBigUInt64BE(0n, at);
    });
    assert.equal(r.code, 1);
    assert.deepEqual({ corruptions: report.corruptions, leaks: report.leaks }, qemu);
    assert.equal(report.leaks, 1);
    assert.deepEqual(report.damaged, []);
  });

  test("a refcount too low: corruptions as qemu-img check counts them, and the damaged guest cluster named with its partition", async () => {
    const { r, report, qemu } = await damaged("refcount", async (image) => {
      const { host } = await l2EntryOf(image, IN_ROOTFS);
      image.writeUInt16BE(0, refcountAt(image, host / CLUSTER));
    });
    assert.equal(r.code, 1);
    assert.deepEqual({ corruptions: report.corruptions, leaks: report.leaks }, qemu);
    assert.ok(report.corruptions > 0);
    const named = report.damaged.map((d: { offset: number; length: number; partitions: Array<{ number: number; filesystem: string; label: string }> }) => ({
      offset: d.offset,
      length: d.length,
      partitions: d.partitions.map(({ number, filesystem, label }) => ({ number, filesystem, label })),
    }));
    assert.deepEqual(named, [{ offset: IN_ROOTFS, length: CLUSTER, partitions: [{ number: 2, filesystem: "ext4", label: "rootfs" }] }]);
    const text = await platter(["check", join(dir, "refcount.qcow2")]);
    assert.match(text.stdout, /^in doubt: 64 KiB at disk offset 2097152 \(65536 bytes\), in partition 2 \(ext4 "rootfs"\)$/m);
  });

  test("an L2 entry past the end of the file: the corruption qemu-img check counts, the guest cluster in doubt", async () => {
    const { report, qemu } = await damaged("past-end", async (image) => {
      const { at } = await l2EntryOf(image, IN_ROOTFS);
      image.writeBigUInt64BE((1n << 63n) | BigInt(image.length + CLUSTER * 100), at);
    });
    assert.deepEqual({ corruptions: report.corruptions, leaks: report.leaks }, qemu);
    assert.match(JSON.stringify(report.checks[0].problems), /past the end of the file/);
    assert.equal(report.damaged[0]?.partitions[0]?.number, 2);
  });

  test("an image qemu marked corrupt does not open, and is still checked", async () => {
    const { r, report } = await damaged("flagged", async (image) => {
      image[79] |= 2; // incompatible feature bit 1: corrupt
    });
    assert.equal(r.code, 1);
    assert.equal(report.clean, false);
    assert.match(report.checks[0].problems.map((p: { message: string }) => p.message).join("\n"), /corrupt/);
  });

  test("a .zst with a damaged frame: exit 1 naming the offset; zstd -t agrees it is damaged; a sound one is clean", { skip: needs("zstd") }, async () => {
    const zst = join(dir, "disk.zst");
    assert.equal((await platter(["convert", "examples/disk.img", zst])).code, 0);
    assert.equal((await platter(["check", zst])).code, 0);
    const image = readFileSync(zst);
    image[image.length >> 1] ^= 0xff;
    writeFileSync(zst, image);
    assert.notEqual((await run("zstd", ["-t", "-q", zst])).code, 0);
    const r = await platter(["check", zst]);
    assert.equal(r.code, 1);
    assert.match(r.stdout, /^ERROR zstd: .*offset \d+/m);
  });

  test("a raw image has nothing to check; a missing one is one line and exit 1", async () => {
    const raw = await platter(["check", "examples/disk.img"]);
    assert.equal(raw.code, 0);
    assert.match(raw.stdout, /a raw image: no container structure to check/);
    const missing = await platter(["check", "/nonexistent.qcow2"]);
    assert.equal(missing.code, 1);
    assert.equal(missing.stderr, "platter: /nonexistent.qcow2: no such file or directory\n");
  });
});
