import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { before, describe, test } from "node:test";
import { qcow2Format } from "../../src/container/qcow2/index.js";
import { UnsupportedError } from "../../src/errors.js";
import { openFilesystem } from "../../src/fs/open.js";
import type { FileSystem, FsNode } from "../../src/fs/types.js";
import { walk } from "../../src/fs/walk.js";
import type { BlockSource } from "../../src/io/block-source.js";
import { FileSource } from "../../src/io/file-source.js";
import { readPartitionTable } from "../../src/partition/index.js";
import { openPartition } from "../../src/image/partition-choice.js";
import { needs } from "../helpers/env.js";
import { fixture } from "../helpers/fixtures.js";
import { sh } from "../helpers/run.js";
import { tempDir } from "../helpers/tmp.js";
import { openQcow2File, sha256Of } from "./qcow2-helpers.js";

const IMAGES = ["v3", "v2", "zlib", "zstd", "c512", "c2m", "refcount1", "refcount64", "zeros", "extl2", "chain/mid", "chain/top", "rawback", "datafile", "snapshot", "dirty"];

interface MapEntry {
  start: number;
  length: number;
  data: boolean;
  zero: boolean;
}

/** qemu-img map's data ranges, merged. */
function qemuDataRanges(path: string): Array<[number, number]> {
  const ranges: Array<[number, number]> = [];
  for (const e of JSON.parse(readFileSync(`${path}.map`, "utf8")) as MapEntry[]) {
    if (!e.data) continue;
    const last = ranges[ranges.length - 1];
    if (last && last[0] + last[1] === e.start) last[1] += e.length;
    else ranges.push([e.start, e.length]);
  }
  return ranges;
}

/** Every file's path, type and sha256 in a filesystem: what must not differ between the raw disk and its qcow2. */
async function fsManifest(disk: BlockSource): Promise<string[]> {
  const table = await readPartitionTable(disk);
  const lines: string[] = [`${table.scheme} ${table.partitions.map((p) => `${p.number}:${p.start}+${p.sectors}`).join(" ")}`];
  for (const p of table.partitions) {
    if (p.container) continue;
    const fs: FileSystem<FsNode> = await openFilesystem(openPartition(disk, table, p.number));
    for await (const { path, node } of walk(fs, await fs.root(), "/")) {
      const digest = node.stat.type === "file" ? createHash("sha256").update(await fs.read(node, 0, node.stat.size)).digest("hex") : "";
      lines.push(`${p.number} ${fs.type} ${node.stat.type} ${path} ${node.stat.size} ${digest}`);
    }
    await fs.close();
  }
  return lines;
}

describe("qcow2 reader against qemu-img", { skip: needs("qemu-img", "qemu-io") }, () => {
  let dir = "";
  let disk = "";
  before(async () => {
    disk = await fixture("make-mbr-image.sh", "mbr.img");
    dir = await fixture("make-qcow2-images.sh", "qcow2", [disk]);
  });

  for (const name of IMAGES) {
    test(`${name}: the same bytes as qemu-img convert -O raw, and qemu-img map's data ranges`, async () => {
      const path = join(dir, `${name}.qcow2`);
      const warnings: string[] = [];
      const image = await openQcow2File(path, { warnings });
      try {
        assert.equal(await sha256Of(image), readFileSync(`${path}.sha256`, "utf8").trim());
        assert.deepEqual(await image.dataRanges(0, image.size), qemuDataRanges(path));
        assert.equal(warnings.length, name === "dirty" ? 1 : 0, warnings.join("\n"));
      } finally {
        await image.close();
      }
    });
  }

  test("describe() and measure() say what qemu-img info says", async () => {
    for (const name of IMAGES) {
      const path = join(dir, `${name}.qcow2`);
      const info = JSON.parse(readFileSync(`${path}.info`, "utf8"));
      const image = await openQcow2File(path);
      const d = { ...image.describe(), ...(await image.measure()) };
      await image.close();
      const specific = info["format-specific"].data;
      assert.equal(d.virtualSize, info["virtual-size"], name);
      assert.equal(d.clusterSize, info["cluster-size"], name);
      assert.equal(d.compat, specific.compat, name);
      assert.equal(d.compressionType, specific["compression-type"] ?? "zlib", name);
      assert.equal(d.refcountBits, specific["refcount-bits"], name);
      assert.equal(d.extendedL2, specific["extended-l2"] ?? false, name);
      assert.equal(d.lazyRefcounts, specific["lazy-refcounts"] ?? false, name);
      assert.equal(d.corrupt, specific.corrupt ?? false, name);
      assert.equal(d.dirty, info["dirty-flag"], name);
      assert.equal(d.backingFile, info["backing-filename"], name);
      assert.equal(d.backingFormat ?? undefined, info["backing-filename-format"], name);
      assert.equal(d.dataFile, specific["data-file"], name);
      // qemu counts the file's blocks (st_blocks), platter its data ranges: the same but for file system rounding.
      assert.ok(Math.abs((d.actualSize as number) - info["actual-size"]) <= 65536, `${name}: ${d.actualSize} vs ${info["actual-size"]}`);
    }
  });

  test("odd-sized reads at odd offsets match qemu's raw output byte for byte", async () => {
    const tmp = tempDir();
    for (const name of ["extl2", "chain/top", "zlib", "zstd", "c512", "datafile"]) {
      const path = join(dir, `${name}.qcow2`);
      const rawPath = join(tmp, "raw");
      // qemu 7.2 opens a relative data file name from its working directory, not the image's folder.
      await sh(`qemu-img convert -O raw '${path}' '${rawPath}'`, { cwd: dir });
      const raw = await FileSource.open(rawPath);
      const image = await openQcow2File(path);
      let seed = 7;
      const random = (n: number) => {
        seed = (seed * 1103515245 + 12345) % 2 ** 31;
        return seed % n;
      };
      try {
        for (let i = 0; i < 300; i++) {
          const length = 1 + random(300_000);
          const offset = random(image.size - length);
          const [a, b] = await Promise.all([image.read(offset, length), raw.read(offset, length)]);
          assert.ok(a.equals(b), `${name}: read of ${length} bytes at ${offset} differs`);
        }
      } finally {
        await image.close();
        await raw.close();
      }
    }
  });

  test("the partitions and every file inside read the same through qcow2 (plain, compressed, a chain) as from the raw disk", async () => {
    const raw = await FileSource.open(disk);
    const expected = await fsManifest(raw);
    await raw.close();
    assert.ok(expected.length > 10);
    for (const name of ["v3", "zstd", "zlib", "extl2"]) {
      const image = await openQcow2File(join(dir, `${name}.qcow2`));
      try {
        assert.deepEqual(await fsManifest(image), expected, name);
      } finally {
        await image.close();
      }
    }
  });

  test("noBacking reads the top layer alone, as qemu does with backing: null", async () => {
    const path = join(dir, "chain/top.qcow2");
    const spec = JSON.stringify({ driver: "qcow2", backing: null, file: { driver: "file", filename: path } });
    const raw = join(tempDir(), "top-alone.raw");
    const expected = (await sh(`qemu-img convert -O raw 'json:${spec}' ${raw} && sha256sum < ${raw}`)).split(" ")[0];
    const image = await openQcow2File(path, { noBacking: true });
    try {
      assert.equal(await sha256Of(image), expected);
      assert.equal(image.describe().backingFile, "mid.qcow2");
      // Only the top layer's two 64 KiB writes hold data (the first spans two clusters).
      assert.deepEqual(await image.dataRanges(0, image.size), [
        [1048576, 131072],
        [66060288, 65536],
      ]);
    } finally {
      await image.close();
    }
  });

  test("detect() knows qcow2 by its magic only", async () => {
    const file = await FileSource.open(join(dir, "v3.qcow2"));
    assert.equal(await qcow2Format.detect(await file.read(0, 4096), file, undefined), true);
    await file.close();
    const raw = await FileSource.open(disk);
    assert.equal(await qcow2Format.detect(await raw.read(0, 4096), raw, undefined), false);
    await raw.close();
  });

  test("an encrypted image is refused in one line that says how to decrypt it", async () => {
    await assert.rejects(openQcow2File(join(dir, "encrypted.qcow2")), (err: Error) => {
      assert.ok(err instanceof UnsupportedError);
      assert.match(err.message, /encrypted \(LUKS\).*qemu-img convert/);
      assert.doesNotMatch(err.message, /\n/);
      return true;
    });
  });
});
