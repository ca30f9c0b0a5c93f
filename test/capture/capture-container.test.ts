/**
 * capture into a compressed (.zst .xz .gz .bz2) or qcow2 DEST: the same
 * decoded bytes and the same mapfile as a raw capture of the same failing
 * source, accepted by the real tools (zstd -t, xz -t, gzip -t, bzip2 -t,
 * qemu-img check and compare, ddrescuelog); killed with SIGKILL and resumed,
 * identical again.
 */
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, test } from "node:test";
import { capture } from "../../src/capture/capture.js";
import { decodeMapfile } from "../../src/capture/mapfile.js";
import { openSource } from "../../src/io/file-source.js";
import { pattern } from "../helpers/data.js";
import { needs } from "../helpers/env.js";
import { FaultySource, type FaultRange } from "../helpers/faulty-source.js";
import { platter, run, sh, untilReady } from "../helpers/run.js";
import { tempDir } from "../helpers/tmp.js";

/** Bad sectors: one alone, a run, a run at a 64 KiB block edge (sector numbers of 512 bytes). */
const FAULTS: FaultRange[] = [{ first: 700 }, { first: 9000, last: 9015 }, { first: 12_287, last: 12_290 }];
const SIZE = 8 << 20;
/** The image killed three times: larger, so three steps of committed progress never reach its end. */
const KILLED_SIZE = 16 << 20;

const blocksOf = (mapPath: string) => decodeMapfile(readFileSync(mapPath, "utf8")).blocks;
const decodedSha = async (cmd: string) => (await sh(`${cmd} | sha256sum`)).split(" ")[0];
const DECODER: Record<string, string> = { zst: "zstd -dc", xz: "xz -dc", gz: "gzip -dc", bz2: "bzip2 -dc", qcow2: "qemu-img convert -q -O raw" };

async function faultyCapture(src: string, dest: string, mapPath: string, retries = 0) {
  const source = new FaultySource(await openSource(src), FAULTS);
  try {
    return await capture({ source, dest, mapPath, hashes: ["sha256"], blockSize: 64 << 10, retries });
  } finally {
    await source.close();
  }
}

/** sha256 of the image DEST holds, as the real tool decodes it. */
async function decoded(dest: string, ext: string): Promise<string> {
  if (ext === "qcow2") {
    await sh(`qemu-img convert -q -O raw ${dest} ${dest}.raw`);
    return decodedSha(`cat ${dest}.raw`);
  }
  return decodedSha(`${DECODER[ext]} ${dest}`);
}

async function accepted(dest: string, ext: string): Promise<void> {
  if (ext === "qcow2") await sh(`qemu-img check -q ${dest}`);
  else await sh(`${DECODER[ext].split(" ")[0]} -t ${dest}`);
}

describe("capture into a compressed or qcow2 image", () => {
  test("a failing source captured into .zst .xz .gz .bz2 .qcow2: the raw capture's bytes and mapfile, the tools accept it", {
    skip: needs("zstd", "xz", "gzip", "bzip2", "qemu-img", "ddrescuelog"),
  }, async () => {
    const dir = tempDir();
    const src = join(dir, "src.img");
    writeFileSync(src, pattern(SIZE, 3));
    const raw = await faultyCapture(src, join(dir, "raw.img"), join(dir, "raw.map"));
    assert.equal(raw.bytesUnreadable, (1 + 16 + 4) * 512);
    const expected = await decodedSha(`cat ${dir}/raw.img`);
    assert.equal(raw.hashes.sha256, expected);
    for (const ext of ["zst", "xz", "gz", "bz2", "qcow2"]) {
      const dest = join(dir, `out.${ext}`);
      const map = join(dir, `out.${ext}.map`);
      const r = await faultyCapture(src, dest, map);
      assert.equal(r.complete, true, ext);
      assert.deepEqual(r.badRanges, raw.badRanges, ext);
      assert.equal(r.hashes.sha256, expected, `${ext}: the hash is the decoded image's`);
      assert.deepEqual(blocksOf(map), blocksOf(join(dir, "raw.map")), `${ext}: the mapfile`);
      await sh(`ddrescuelog -t ${map}`);
      await accepted(dest, ext);
      assert.equal(await decoded(dest, ext), expected, `${ext}: the decoded bytes`);
    }
    await sh(`qemu-img compare -q ${dir}/raw.img ${dir}/out.qcow2`);
  });

  for (const ext of ["zst", "gz", "qcow2"]) {
    test(`killed with SIGKILL three times while capturing into .${ext}, resumed each time: identical decoded image, mapfile never ahead of DEST`, {
      skip: needs(ext === "qcow2" ? "qemu-img" : DECODER[ext].split(" ")[0], "ddrescuelog"),
    }, async () => {
      const dir = tempDir();
      const src = join(dir, "src.img");
      const data = pattern(KILLED_SIZE, 5);
      writeFileSync(src, data);
      await faultyCapture(src, join(dir, "raw.img"), join(dir, "raw.map"));
      const expected = await decodedSha(`cat ${dir}/raw.img`);
      const dest = join(dir, `out.${ext}`);
      const mapPath = join(dir, "out.map");
      const helper = ["--import", "tsx", "test/helpers/faulty-capture.ts", src, dest, mapPath, JSON.stringify(FAULTS)];
      const rescued = () => {
        try {
          return blocksOf(mapPath).filter((b) => b.status === "+").reduce((n, b) => n + b.size, 0);
        } catch {
          return 0; // not written yet
        }
      };
      // Kill points well before the end (at 64 KiB per 40 ms read). The map shows progress only as DEST commits it,
      // in steps of up to 4 MiB half a second apart: each kill waits for one, so three of them may reach 12 MiB.
      for (const stopAt of [1 << 20, 5 << 19, 4 << 20]) {
        const before = rescued();
        const child = spawn(process.execPath, [...helper, "40"], { stdio: "ignore" });
        const exited = new Promise((resolve) => child.on("exit", resolve));
        const progressed = await untilReady(child, () => rescued() >= Math.max(stopAt, before + 1));
        child.kill("SIGKILL");
        await exited;
        assert.ok(progressed, `the run made progress before the kill at ${stopAt}`);
        // The map never claims a byte DEST does not hold (as the real tool decodes the partial file).
        const partial = join(dir, "partial.raw");
        if (ext === "qcow2") await sh(`qemu-img convert -q -O raw ${dest} ${partial}`);
        else await sh(`${DECODER[ext]} ${dest} > ${partial} 2>/dev/null || true`);
        const held = readFileSync(partial);
        for (const b of blocksOf(mapPath).filter((x) => x.status === "+")) {
          assert.ok(held.subarray(b.pos, b.pos + b.size).equals(data.subarray(b.pos, b.pos + b.size)), `after the kill at ${stopAt}: rescued block at ${b.pos}`);
        }
      }
      assert.ok(blocksOf(mapPath).some((b) => b.status !== "+" && b.status !== "-"), "killed before the end");
      const resumed = await run(process.execPath, helper);
      const r = JSON.parse(resumed.stdout);
      assert.equal(r.resumed, true);
      assert.equal(r.complete, true);
      assert.equal(r.hashes.sha256, expected);
      assert.deepEqual(blocksOf(mapPath), blocksOf(join(dir, "raw.map")));
      await sh(`ddrescuelog -t ${mapPath}`);
      await accepted(dest, ext);
      assert.equal(await decoded(dest, ext), expected);
    });
  }

  test("a later run cannot retry bad sectors already in a compressed DEST: one line with the way out, DEST untouched", { skip: needs("zstd") }, async () => {
    const dir = tempDir();
    const src = join(dir, "src.img");
    writeFileSync(src, pattern(1 << 20, 7));
    const dest = join(dir, "out.zst");
    const map = join(dir, "out.map");
    await faultyCapture(src, dest, map);
    const before = readFileSync(dest);
    await assert.rejects(faultyCapture(src, dest, map, 2), /cannot retry the bad sectors already written into .*out\.zst.*capture into a raw or \.qcow2 image/);
    assert.ok(readFileSync(dest).equals(before));
    await sh(`zstd -t ${dest}`);
  });

  test("capture refuses a compressed image to standard output and --no-trim into a compressed DEST", async () => {
    const dir = tempDir();
    const stdout = await platter(["capture", "examples/disk.img", "-", "--to", "zst"]);
    assert.equal(stdout.code, 2);
    assert.match(stdout.stderr, /^platter: standard output: a zstd image is written to a file/);
    const noTrim = await platter(["capture", "examples/disk.img", join(dir, "x.gz"), "--no-trim"]);
    assert.equal(noTrim.code, 2);
    assert.match(noTrim.stderr, /--no-trim and --no-scrape need a DEST that can be completed later, not a gzip stream/);
  });
});
