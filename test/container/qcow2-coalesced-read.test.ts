/**
 * Reads of host clusters that follow on in the file, gathered into one
 * preadv across what lies between them in the guest (vdisk/host-reads.ts),
 * and convert's spans over the gaps between data: on qcow2 images laid out
 * by qemu-io so that such runs cross an L2 table boundary, a compressed
 * cluster, a zero cluster and an unallocated cluster over a backing file.
 * Every read agrees with qemu-img convert -O raw; what convert writes with
 * qemu-img compare.
 */
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { before, describe, test } from "node:test";
import { convertImage } from "../../src/convert/convert.js";
import { HostReads } from "../../src/container/vdisk/host-reads.js";
import { FileSource } from "../../src/io/file-source.js";
import { MemorySource } from "../../src/io/memory-source.js";
import { needs } from "../helpers/env.js";
import { sh } from "../helpers/run.js";
import { tempDir } from "../helpers/tmp.js";
import { openQcow2File, sha256Of } from "./qcow2-helpers.js";

const K = 1024;
const M = 1024 * K;

/** qemu-io commands, run in order on a fresh 8 MiB image of 4 KiB clusters (an L2 table maps 2 MiB). */
const LAYOUT = [
  // First a cluster in each later L2 table's span, and a compressed one: the tables, and the cluster
  // qemu packs compressed clusters into, exist before the runs below, so those runs' data clusters are
  // neighbours in the file.
  "write -P 0x31 3M 4k",
  "write -c -P 0x32 5M 4k",
  "write -z 2404k 4k", // a zero cluster that never had a host cluster
  // Data, a one-cluster unallocated gap, data.
  "write -P 0x41 0 64k",
  "write -P 0x42 68k 60k",
  // A run across the L2 table boundary at 2 MiB.
  "write -P 0x43 1984k 128k",
  // Plain, compressed (packed beside the one at 5 MiB), plain.
  "write -P 0x44 2200k 4k",
  "write -c -P 0x45 2204k 4k",
  "write -P 0x46 2208k 4k",
  // Plain, the zero cluster at 2404k, plain.
  "write -P 0x47 2400k 4k",
  "write -P 0x48 2408k 4k",
];

async function qemuRawSha256(path: string, dir: string): Promise<string> {
  const raw = join(dir, "qemu.raw");
  await sh(`qemu-img convert -O raw '${path}' '${raw}'`);
  return createHash("sha256").update(readFileSync(raw)).digest("hex");
}

/** Counts the vectored reads FileSource makes of more than one buffer while `work` runs. */
async function countVectoredReads(work: () => Promise<void>): Promise<number> {
  const original = FileSource.prototype.readv;
  let count = 0;
  FileSource.prototype.readv = function (this: FileSource, offset: number, buffers: Buffer[]) {
    if (buffers.length > 1) count++;
    return original.call(this, offset, buffers);
  };
  try {
    await work();
  } finally {
    FileSource.prototype.readv = original;
  }
  return count;
}

describe("qcow2 host clusters that follow on in the file, read together", { skip: needs("qemu-img", "qemu-io") }, () => {
  const dir = tempDir();
  const image = join(dir, "layout.qcow2");
  const overlay = join(dir, "overlay.qcow2");
  before(async () => {
    await sh(`qemu-img create -q -f qcow2 -o cluster_size=4096 '${image}' 8M`);
    await sh(`qemu-io -f qcow2 ${LAYOUT.map((c) => `-c '${c}'`).join(" ")} '${image}'`);
    // A backing file full of data under an overlay written around an unallocated cluster.
    const backing = join(dir, "backing.qcow2");
    await sh(`qemu-img create -q -f qcow2 -o cluster_size=4096 '${backing}' 8M`);
    await sh(`qemu-io -f qcow2 -c 'write -P 0x51 0 8M' '${backing}'`);
    await sh(`qemu-img create -q -f qcow2 -o cluster_size=4096 -b backing.qcow2 -F qcow2 '${overlay}'`);
    await sh(`qemu-io -f qcow2 -c 'write -P 0x52 1M 64k' -c 'write -P 0x53 1092k 60k' '${overlay}'`);
  });

  for (const name of ["layout", "overlay"]) {
    test(`${name}: 4 MiB reads give qemu-img convert -O raw's bytes, with vectored reads across the gaps`, async () => {
      const path = name === "layout" ? image : overlay;
      const expected = await qemuRawSha256(path, dir);
      const qcow2 = await openQcow2File(path);
      try {
        let digest = "";
        const vectored = await countVectoredReads(async () => {
          digest = await sha256Of(qcow2, 4 * M);
        });
        assert.equal(digest, expected);
        assert.ok(vectored > 0, "some host runs were read with one preadv");
      } finally {
        await qcow2.close();
      }
    });

    test(`${name}: convert to a sparse raw file and to qcow2: qemu-img compare finds them identical, qemu-img check clean`, async () => {
      const path = name === "layout" ? image : overlay;
      const raw = join(dir, `${name}.raw`);
      const copy = join(dir, `${name}-copy.qcow2`);
      await convertImage({ source: path, dest: raw, sparse: true, force: true });
      await convertImage({ source: path, dest: copy, force: true });
      await sh(`qemu-img compare -f qcow2 -F raw '${path}' '${raw}'`);
      await sh(`qemu-img compare -f qcow2 -F qcow2 '${path}' '${copy}'`);
      await sh(`qemu-img check -q '${copy}'`);
    });
  }

  test("reads at every cluster-aligned offset and length around the runs agree with qemu's raw bytes", async () => {
    const rawPath = join(dir, "aligned.raw");
    await sh(`qemu-img convert -O raw '${image}' '${rawPath}'`);
    const raw = readFileSync(rawPath);
    const qcow2 = await openQcow2File(image);
    try {
      for (const [from, to] of [
        [0, 132 * K],
        [1980 * K, 2116 * K],
        [2196 * K, 2216 * K],
        [2396 * K, 2416 * K],
      ] as Array<[number, number]>) {
        for (let start = from; start < to; start += 4 * K) {
          for (let end = start + 4 * K; end <= to; end += 12 * K) {
            const got = await qcow2.read(start, end - start);
            assert.ok(got.equals(raw.subarray(start, end)), `read of [${start}, ${end}) differs`);
          }
        }
      }
    } finally {
      await qcow2.close();
    }
  });
});

test("HostReads: a source without readv gets one read per piece, each at its place", async () => {
  const bytes = Buffer.from(Array.from({ length: 64 }, (_, i) => i));
  const file = new MemorySource(bytes);
  const reads: Array<[number, number]> = [];
  const spy = Object.create(file) as MemorySource;
  spy.read = (offset: number, length: number, into?: Buffer) => {
    reads.push([offset, length]);
    return file.read(offset, length, into);
  };
  const out = Buffer.alloc(40);
  const hostReads = new HostReads();
  hostReads.add(spy, 8, out.subarray(0, 8));
  hostReads.add(spy, 16, out.subarray(20, 28)); // follows on in the file, not in the guest
  hostReads.add(spy, 40, out.subarray(30, 40));
  await hostReads.done();
  assert.deepEqual(reads, [
    [8, 8],
    [16, 8],
    [40, 10],
  ]);
  assert.deepEqual([...out.subarray(0, 8)], [8, 9, 10, 11, 12, 13, 14, 15]);
  assert.deepEqual([...out.subarray(20, 28)], [16, 17, 18, 19, 20, 21, 22, 23]);
  assert.deepEqual([...out.subarray(30, 40)], [40, 41, 42, 43, 44, 45, 46, 47, 48, 49]);
});

test("FileSource.readv fills more buffers than one preadv takes (IOV_MAX), each from its offset", async () => {
  const dir = tempDir();
  const path = join(dir, "bytes");
  const bytes = Buffer.from(Array.from({ length: 3000 * 3 }, (_, i) => (i * 7) % 251));
  writeFileSync(path, bytes);
  const file = await FileSource.open(path);
  try {
    const buffers = Array.from({ length: 3000 }, () => Buffer.alloc(3));
    await file.readv(0, buffers);
    assert.ok(Buffer.concat(buffers).equals(bytes));
  } finally {
    await file.close();
  }
});
