import assert from "node:assert/strict";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { before, describe, test } from "node:test";
import { checkQcow2, type Qcow2CheckReport } from "../../src/container/qcow2/index.js";
import { decodeL1Entry, decodeL2Entry, type L2Entry } from "../../src/container/qcow2/entries.js";
import { readQcow2Metadata } from "../../src/container/qcow2/tables.js";
import { FileSource } from "../../src/io/file-source.js";
import { MemorySource } from "../../src/io/memory-source.js";
import { PlatterError } from "../../src/errors.js";
import { prng } from "../helpers/fs-fuzz.js";
import { needs } from "../helpers/env.js";
import { fixture } from "../helpers/fixtures.js";
import { run } from "../helpers/run.js";
import { tempDir } from "../helpers/tmp.js";

const IMAGES = ["v3", "v2", "zlib", "zstd", "c512", "c2m", "refcount1", "refcount64", "zeros", "extl2", "chain/mid", "chain/top", "rawback", "datafile", "snapshot", "dirty"];

/** qemu-img check --output=json, in the report's terms. */
async function qemuCheck(path: string, cwd: string) {
  const r = await run("qemu-img", ["check", "--output=json", path], { cwd });
  const q = JSON.parse(r.stdout);
  return {
    corruptions: q.corruptions ?? 0,
    leaks: q.leaks ?? 0,
    imageEndOffset: q["image-end-offset"],
    totalClusters: q["total-clusters"],
    allocatedClusters: q["allocated-clusters"],
    compressedClusters: q["compressed-clusters"] ?? 0,
    fragmentedClusters: q["fragmented-clusters"] ?? 0,
    exitCode: r.code,
  };
}

async function platterCheck(path: string): Promise<Qcow2CheckReport> {
  const file = await FileSource.open(path);
  try {
    return await checkQcow2(file);
  } finally {
    await file.close();
  }
}

function summary(r: Qcow2CheckReport) {
  const { corruptions, leaks, imageEndOffset, totalClusters, allocatedClusters, compressedClusters, fragmentedClusters } = r;
  return { corruptions, leaks, imageEndOffset, totalClusters, allocatedClusters, compressedClusters, fragmentedClusters };
}

/** Byte offset (in the file) of the L2 entry for guest cluster `guest`, and the entry. */
async function l2EntryFor(image: Buffer, want: (e: L2Entry) => boolean, skip = 0): Promise<{ at: number; guest: number; entry: L2Entry }> {
  const { layout } = await readQcow2Metadata(new MemorySource(image));
  for (let i = 0; i < layout.header.l1Size; i++) {
    const { l2Offset } = decodeL1Entry(image.subarray(layout.header.l1TableOffset), i);
    if (l2Offset === 0) continue;
    for (let j = 0; j < layout.l2Entries; j++) {
      const entry = decodeL2Entry(image.subarray(l2Offset, l2Offset + layout.clusterSize), j, layout);
      if (want(entry) && skip-- === 0) return { at: l2Offset + j * layout.l2EntryBytes, guest: (i * layout.l2Entries + j) * layout.clusterSize, entry };
    }
  }
  throw new Error("no such entry");
}

describe("checkQcow2 agrees with qemu-img check", { skip: needs("qemu-img", "qemu-io") }, () => {
  let dir = "";
  let v3: Buffer;
  before(async () => {
    const disk = await fixture("make-mbr-image.sh", "mbr.img");
    dir = await fixture("make-qcow2-images.sh", "qcow2", [disk]);
    v3 = readFileSync(join(dir, "v3.qcow2"));
  });

  test("every image qemu made: the same counts, clean where qemu says clean (snapshots, bitmaps of refcounts 1 to 64 bits)", async () => {
    for (const name of IMAGES) {
      const path = join(dir, `${name}.qcow2`);
      const expected = await qemuCheck(path, dir);
      const report = await platterCheck(path);
      const { exitCode, ...counts } = expected;
      assert.deepEqual(summary(report), counts, name);
      assert.equal(report.clean, exitCode === 0, name);
    }
  });

  test("persistent bitmaps' clusters are counted (qemu-img bitmap --add, then writes)", async () => {
    const tmp = tempDir();
    const path = join(tmp, "bitmaps.qcow2");
    writeFileSync(path, v3);
    const sh = async (cmd: string, args: string[]) => assert.equal((await run(cmd, args)).code, 0);
    await sh("qemu-img", ["bitmap", "--add", path, "b0"]);
    await sh("qemu-img", ["bitmap", "--add", "-g", "512", path, "b1"]);
    await sh("qemu-io", ["-c", "write -P 0x77 1M 4M", path]);
    const report = await platterCheck(path);
    const { exitCode, ...counts } = await qemuCheck(path, tmp);
    assert.equal(exitCode, 0);
    assert.deepEqual(summary(report), counts);
    assert.equal(report.clean, true, JSON.stringify(report.problems));
  });

  /** Damage a copy of v3 with `edit`, then compare both checks. */
  async function damaged(edit: (image: Buffer) => Promise<void> | void): Promise<{ report: Qcow2CheckReport; qemu: Awaited<ReturnType<typeof qemuCheck>> }> {
    const tmp = tempDir();
    const image = Buffer.from(v3);
    await edit(image);
    const path = join(tmp, "damaged.qcow2");
    writeFileSync(path, image);
    const qemu = await qemuCheck(path, tmp);
    const report = await platterCheck(path);
    const { exitCode, ...counts } = qemu;
    assert.deepEqual(summary(report), counts, JSON.stringify(report.problems.map((p) => p.message)));
    assert.equal(report.clean, false);
    assert.notEqual(exitCode, 0);
    return { report, qemu };
  }

  const refcountAt = (image: Buffer, cluster: number) => {
    const reftable = Number(image.readBigUInt64BE(48));
    const block = Number(image.readBigUInt64BE(reftable));
    return block + cluster * 2;
  };

  test("a leaked cluster: a data cluster no L2 entry uses any more", async () => {
    const { report } = await damaged(async (image) => {
      const { at } = await l2EntryFor(image, (e) => e.kind === "normal");
      image.writeBigUInt64BE(0n, at);
    });
    assert.equal(report.leaks, 1);
    assert.match(report.problems[0]?.message ?? "", /^Leaked cluster \d+ refcount=1 reference=0$/);
    assert.deepEqual(report.damagedGuestRanges, []);
  });

  test("a refcount too low: the cluster a guest block lives in is free for the next write to take", async () => {
    const { report } = await damaged(async (image) => {
      const { entry } = await l2EntryFor(image, (e) => e.kind === "normal");
      image.writeUInt16BE(0, refcountAt(image, entry.hostOffset / 65536));
    });
    assert.equal(report.corruptions, 2); // the refcount, and the copied flag that now lies
    const { guest } = await l2EntryFor(v3, (e) => e.kind === "normal");
    assert.deepEqual(report.damagedGuestRanges, [[guest, 65536]]);
    assert.match(report.problems.map((p) => p.message).join("\n"), new RegExp(`refcount=0 reference=1 \\(used by data of guest offset ${guest}\\)`));
  });

  test("two guest clusters sharing one host cluster (overlap): both named", async () => {
    let guests: number[] = [];
    const { report } = await damaged(async (image) => {
      const first = await l2EntryFor(image, (e) => e.kind === "normal");
      const second = await l2EntryFor(image, (e) => e.kind === "normal", 1);
      image.writeBigUInt64BE(image.readBigUInt64BE(first.at), second.at);
      guests = [first.guest, second.guest];
    });
    const text = report.problems.map((p) => p.message).join("\n");
    assert.match(text, new RegExp(`refcount=1 reference=2 \\(used by data of guest offset ${guests[0]}, data of guest offset ${guests[1]}\\)`));
    assert.ok(report.damagedGuestRanges.some(([start]) => start === guests[0]));
  });

  test("an L2 table on top of the refcount table, and a refcount block on top of the L1 table", async () => {
    await damaged((image) => {
      const reftable = image.readBigUInt64BE(48);
      image.writeBigUInt64BE(reftable | (1n << 63n), Number(image.readBigUInt64BE(40)));
    });
    await damaged((image) => {
      const reftable = Number(image.readBigUInt64BE(48));
      image.writeBigUInt64BE(image.readBigUInt64BE(40), reftable);
    });
  });

  test("L2 entries past the end of the file and off cluster boundaries", async () => {
    const past = await damaged(async (image) => {
      const { at } = await l2EntryFor(image, (e) => e.kind === "normal");
      image.writeBigUInt64BE((1n << 63n) | BigInt(image.length + 65536 * 100), at);
    });
    assert.match(past.report.problems.map((p) => p.message).join("\n"), /past the end of the file/);
    const unaligned = await damaged(async (image) => {
      const { at } = await l2EntryFor(image, (e) => e.kind === "normal");
      image.writeBigUInt64BE(image.readBigUInt64BE(at) + 4096n, at);
    });
    assert.match(unaligned.report.problems.map((p) => p.message).join("\n"), /not cluster aligned/);
  });

  test("bit-flipped copies (plain, compressed, with a snapshot) each give a report or one clean error", async () => {
    let reported = 0;
    let refused = 0;
    for (const name of ["v3", "zlib", "snapshot"]) {
      const original = readFileSync(join(dir, `${name}.qcow2`));
      const random = prng(name.length * 104729);
      for (let copy = 0; copy < 60; copy++) {
        const image = Buffer.from(original);
        for (let i = 0; i < 3; i++) {
          // Mostly the metadata: header, refcount table and blocks, L1 and L2 tables, snapshot table.
          const at = Math.floor(random() * (random() < 0.8 ? Math.min(image.length, 65536 * 8) : image.length));
          image[at] = (image[at] as number) ^ (1 << Math.floor(random() * 8));
        }
        try {
          const report = await checkQcow2(new MemorySource(image));
          assert.equal(report.clean, report.corruptions === 0 && report.leaks === 0);
          reported++;
        } catch (err) {
          if (!(err instanceof PlatterError)) throw new Error(`${name} copy ${copy}: ${(err as Error).stack}`);
          refused++;
        }
      }
    }
    console.log(`check under bit flips: ${reported} reports, ${refused} refused cleanly`);
  });
});
