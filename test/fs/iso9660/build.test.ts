/**
 * buildIso as a library call keeps the promises `platter iso` makes: an
 * image written to a file is left out of its own source folder and removed
 * when the build fails or is stopped; a source file whose size changes
 * between the scan and the write fails the build naming it, or with
 * skipUnreadable is written cut or zero-filled to its scanned size with a
 * warning (as xorriso does), and the image stays one that bsdtar and isovfy
 * read without complaint.
 */
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { appendFileSync, existsSync, mkdirSync, readFileSync, rmSync, truncateSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { Writable } from "node:stream";
import { describe, test } from "node:test";
import { DeviceError, UsageError } from "../../../src/errors.js";
import { BuildStopped, buildIso, type BuildIsoOptions } from "../../../src/fs/iso9660/writer/index.js";
import { SECTOR_SIZE } from "../../../src/fs/iso9660/constants.js";
import { layoutImage } from "../../../src/fs/iso9660/writer/layout.js";
import { planImage } from "../../../src/fs/iso9660/writer/plan.js";
import { measureIsoDirectory, measureJolietDirectory, renderIsoDirectory, renderJolietDirectory } from "../../../src/fs/iso9660/writer/records.js";
import { scanSources } from "../../../src/fs/iso9660/writer/scan.js";
import { StreamSink } from "../../../src/io/file-sink.js";
import { needs } from "../../helpers/env.js";
import { run } from "../../helpers/run.js";
import { tempDir } from "../../helpers/tmp.js";
import { testTree } from "./helpers.js";

const BIG = 3 << 20;

/** A source folder with a 3 MiB file (big enough to be read by its data ranges) and a small one. */
function source(): { dir: string; big: string; data: Buffer } {
  const dir = join(tempDir(), "src");
  mkdirSync(dir);
  const data = Buffer.alloc(BIG);
  for (let i = 0; i < BIG; i += 4) data.writeUInt32LE(i, i);
  const big = join(dir, "big.bin");
  writeFileSync(big, data);
  writeFileSync(join(dir, "small.txt"), "small\n");
  return { dir, big, data };
}

/** Options that change the file once the scan is over, when the first file data is about to be written. */
function changing(src: string, change: () => void, extra: Partial<BuildIsoOptions> = {}): BuildIsoOptions {
  let changed = false;
  return {
    sources: [src],
    volumeId: "CHANGING",
    sourceDateEpoch: 1700000000,
    ...extra,
    onProgress: (p) => {
      if (p.phase === "write" && !changed) {
        changed = true;
        change();
      }
    },
  };
}

async function bsdtarRead(iso: string, name: string): Promise<Buffer> {
  const r = await run("bsdtar", ["-xOf", iso, name]);
  assert.equal(r.code, 0, r.stderr);
  return r.stdoutBytes;
}

describe("a source file that changes size while the image is written", () => {
  test("a file that shrinks fails the build naming it, and the half-written image is removed", async () => {
    const { dir, big } = source();
    const out = join(tempDir(), "out.iso");
    await assert.rejects(buildIso(out, changing(dir, () => truncateSync(big, 1000))), (err) => {
      assert.ok(err instanceof DeviceError);
      assert.equal(
        err.message,
        `${big}: its size changed while the image was being written (${BIG} bytes when scanned, 1000 now) (--skip-unreadable writes what can be read of it, cut or zero-filled to ${BIG} bytes)`,
      );
      return true;
    });
    assert.equal(existsSync(out), false);
  });

  test("a file that grows fails the build too", async () => {
    const { dir, big } = source();
    const out = join(tempDir(), "out.iso");
    await assert.rejects(buildIso(out, changing(dir, () => appendFileSync(big, "more"))), /its size changed while the image was being written \(3145728 bytes when scanned, 3145732 now\)/);
    assert.equal(existsSync(out), false);
  });

  test("with skipUnreadable, a shrunk file is zero-filled and a grown one cut, each with a warning; bsdtar and isovfy read the image", { skip: needs("bsdtar", "isovfy") }, async () => {
    for (const [what, change, expected] of [
      ["shrinks", (p: string) => truncateSync(p, 1000), (d: Buffer) => Buffer.concat([d.subarray(0, 1000), Buffer.alloc(BIG - 1000)])],
      ["grows", (p: string) => appendFileSync(p, "more"), (d: Buffer) => d],
    ] as const) {
      const { dir, big, data } = source();
      const out = join(tempDir(), "out.iso");
      const warnings: string[] = [];
      await buildIso(out, changing(dir, () => change(big), { skipUnreadable: true, onWarning: (w) => warnings.push(w) }));
      assert.equal(warnings.length, 1, what);
      assert.match(warnings[0], what === "shrinks" ? /big\.bin: its size changed .*: the image holds its first 1000 bytes, then zeros$/ : /big\.bin: its size changed .*: the image holds only its first 3145728 bytes$/);
      assert.ok((await bsdtarRead(out, "big.bin")).equals(expected(data)), what);
      assert.equal((await bsdtarRead(out, "small.txt")).toString(), "small\n");
      assert.match((await run("isovfy", [out])).stdout, /No errors found/);
    }
  });

  test("a file that cannot be opened any more is zero-filled with skipUnreadable, an error without", { skip: needs("bsdtar") }, async () => {
    const { dir, big } = source();
    const out = join(tempDir(), "out.iso");
    await assert.rejects(buildIso(out, changing(dir, () => rmSync(big))), /big\.bin: no such file or directory \(--skip-unreadable/);
    const again = source();
    const warnings: string[] = [];
    await buildIso(out, changing(again.dir, () => rmSync(again.big), { skipUnreadable: true, onWarning: (w) => warnings.push(w) }));
    assert.deepEqual(warnings, [`${again.big}: no such file or directory: the image holds zeros in its place`]);
    assert.ok((await bsdtarRead(out, "big.bin")).equals(Buffer.alloc(BIG)));
  });
});

test("a file replaced by a FIFO since the scan is refused, not waited on", async () => {
  const { dir, big } = source();
  const out = join(tempDir(), "out.iso");
  const toFifo = () => {
    rmSync(big);
    execFileSync("mkfifo", [big]);
  };
  await assert.rejects(buildIso(out, changing(dir, toFifo)), /big\.bin: no longer a regular file \(--skip-unreadable/);
});

describe("buildIso writing to a file", () => {
  test("leaves the image out of its own source folder", { skip: needs("bsdtar") }, async () => {
    const { dir } = source();
    const out = join(dir, "image.iso");
    await buildIso(out, { sources: [dir], volumeId: "SELF" });
    const listing = (await run("bsdtar", ["-tf", out])).stdout.split("\n").filter(Boolean).sort();
    assert.deepEqual(listing, [".", "big.bin", "small.txt"]);
  });

  test("stopped through its signal: rejects with BuildStopped and removes the half-written image", async () => {
    const { dir } = source();
    const out = join(tempDir(), "out.iso");
    const stop = new AbortController();
    await assert.rejects(buildIso(out, changing(dir, () => stop.abort(), { signal: stop.signal })), (err) => {
      assert.ok(err instanceof BuildStopped);
      assert.equal(err.message, `stopped: ${out} was not finished, and is removed`);
      return true;
    });
    assert.equal(existsSync(out), false);
    // Into a sink the caller owns: the same error, the sink is the caller's to close.
    const sink = new StreamSink(new Writable({ write: (_chunk, _encoding, done) => done() }), "nowhere");
    const again = new AbortController();
    await assert.rejects(buildIso(sink, changing(dir, () => again.abort(), { signal: again.signal })), /^BuildStopped: stopped before the image was complete$/);
  });

  test("checks the inputs before the output is created or truncated", async () => {
    const { dir } = source();
    const out = join(tempDir(), "out.iso");
    writeFileSync(out, "keep me");
    await assert.rejects(buildIso(out, { sources: [join(dir, "missing")], volumeId: "X" }), UsageError);
    await assert.rejects(buildIso(out, { sources: [dir], volumeId: "V".repeat(33) }), UsageError);
    await assert.rejects(buildIso(out, { sources: [dir], volumeId: "X", biosBoot: { path: join(dir, "none.bin") } }), UsageError);
    assert.equal(readFileSync(out, "utf8"), "keep me");
  });
});

test("the layout's measured folder sizes are the sizes of the rendered folders, on the test tree (names and symlink targets in continuation areas, relocated folders, devices), with and without Rock Ridge and Joliet", async () => {
  const root = await scanSources([await testTree()]);
  for (const [rockRidge, joliet] of [[true, true], [true, false], [false, true]]) {
    const plan = planImage(root, { rockRidge, joliet, volumeId: "X", volumeTime: 0, reproducible: false, applicationId: "X" });
    layoutImage(plan);
    let continued = 0;
    for (const dir of plan.isoDirs) {
      const { extent, continuation } = renderIsoDirectory(plan, dir);
      assert.deepEqual(measureIsoDirectory(plan, dir), { sectors: extent.length / SECTOR_SIZE, continuationSectors: continuation.length / SECTOR_SIZE });
      continued += continuation.length;
    }
    assert.equal(continued > 0, rockRidge);
    for (const dir of plan.jolietDirs) assert.equal(measureJolietDirectory(dir), renderJolietDirectory(dir).length / SECTOR_SIZE);
  }
});
