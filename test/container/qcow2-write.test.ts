import assert from "node:assert/strict";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { before, describe, test } from "node:test";
import { qcow2Writer } from "../../src/container/qcow2/index.js";
import type { Qcow2WriterOptions } from "../../src/container/qcow2/writer.js";
import { UsageError } from "../../src/errors.js";
import { FileSource } from "../../src/io/file-source.js";
import { MemorySource } from "../../src/io/memory-source.js";
import { pattern } from "../helpers/data.js";
import { needs } from "../helpers/env.js";
import { fixture } from "../helpers/fixtures.js";
import { prng } from "../helpers/fs-fuzz.js";
import { platter, run, sh } from "../helpers/run.js";
import { tempDir } from "../helpers/tmp.js";
import { convertToQcow2, openQcow2File, sha256Of } from "./qcow2-helpers.js";

const WRITER = join(import.meta.dirname, "../../src/container/qcow2/index.ts");

/** qemu-img's verdicts on an image platter wrote, against the raw disk it should equal. */
async function qemuAccepts(image: string, raw: string, size: number): Promise<void> {
  const check = await run("qemu-img", ["check", "--output=json", image]);
  assert.equal(check.code, 0, `qemu-img check: ${check.stdout}${check.stderr}`);
  const compare = await run("qemu-img", ["compare", "-f", "raw", "-F", "qcow2", raw, image]);
  assert.equal(compare.code, 0, `qemu-img compare: ${compare.stdout}${compare.stderr}`);
  const info = JSON.parse((await run("qemu-img", ["info", "--output=json", image])).stdout);
  assert.equal(info["virtual-size"], size);
  assert.equal(info["dirty-flag"], false);
}

/**
 * Writes as ddrescue's passes make them: blocks of varied sizes (whole
 * clusters, sector runs inside clusters, spans over several clusters) in a
 * shuffled order, some rewritten, some zeroed; applied both to a qcow2 sink
 * and to an in-memory expected disk.
 */
function ddrescueLikeWrites(size: number, seed: number): Array<{ offset: number; length: number; zero: boolean }> {
  const random = prng(seed);
  const ops: Array<{ offset: number; length: number; zero: boolean }> = [];
  for (let offset = 0; offset < size; ) {
    const length = Math.min(size - offset, [512, 4096, 65536, 131072 + 512, 1 << 20][Math.floor(random() * 5)] as number);
    if (random() < 0.8) ops.push({ offset, length, zero: false });
    offset += length;
  }
  for (let i = ops.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [ops[i], ops[j]] = [ops[j] as (typeof ops)[number], ops[i] as (typeof ops)[number]];
  }
  for (let i = 0; i < 40; i++) {
    const offset = Math.floor((random() * size) / 512) * 512;
    ops.push({ offset, length: Math.min(size - offset, 512 * (1 + Math.floor(random() * 300))), zero: random() < 0.5 });
  }
  return ops;
}

describe("qcow2 writer: what qemu-img accepts", { skip: needs("qemu-img", "qemu-io") }, () => {
  let disk = "";
  before(async () => {
    disk = await fixture("make-mbr-image.sh", "mbr.img");
  });

  for (const [label, options] of [
    ["plain", {}],
    ["zlib-compressed", { compress: true }],
    ["zstd-compressed", { compress: "zstd" }],
    ["512-byte clusters (the refcount table outgrows its first cluster)", { clusterSize: 512 }],
    ["2 MiB clusters, compressed", { clusterSize: 2 << 20, compress: "zlib" }],
  ] as Array<[string, Qcow2WriterOptions]>) {
    test(`the MBR fixture disk, ${label}: qemu-img check clean, compare identical, info agrees; platter reads it back`, async () => {
      const dest = join(tempDir(), "disk.qcow2");
      const source = await FileSource.open(disk);
      await convertToQcow2(source, dest, options);
      await source.close();
      await qemuAccepts(dest, disk, 67108864);
      const info = JSON.parse((await run("qemu-img", ["info", "--output=json", dest])).stdout);
      assert.equal(info["format-specific"].data["compression-type"], options.compress === "zstd" ? "zstd" : "zlib");
      assert.equal(info["cluster-size"], options.clusterSize ?? 65536);
      if (options.compress) {
        const check = JSON.parse((await run("qemu-img", ["check", "--output=json", dest])).stdout);
        assert.ok(check["compressed-clusters"] > 0, JSON.stringify(check));
      }
      const image = await openQcow2File(dest);
      assert.equal(await sha256Of(image), (await sh(`sha256sum < ${disk}`)).split(" ")[0]);
      await image.close();
    });
  }

  for (const compress of [false, "zlib", "zstd"] as const) {
    test(`out-of-order writes, rewrites and zeroed ranges (${compress || "plain"}): the image equals the same writes to a raw file`, async () => {
      const size = 24 * 1024 * 1024 + 512 * 7; // not a whole number of clusters
      const tmp = tempDir();
      const dest = join(tmp, "out.qcow2");
      const expected = Buffer.alloc(size);
      const sink = await qcow2Writer.create(dest, { size, compress, threads: 2 });
      const ops = ddrescueLikeWrites(size, compress === "zstd" ? 3 : compress ? 2 : 1);
      for (let i = 0; i < ops.length; i += 4) {
        // Four writes in flight at once, as the copier has them.
        await Promise.all(
          ops.slice(i, i + 4).map(({ offset, length, zero }) => {
            if (zero) {
              expected.fill(0, offset, offset + length);
              return sink.writeZeros(offset, length);
            }
            const data = pattern(length, offset + i);
            data.copy(expected, offset);
            return sink.write(offset, data);
          }),
        );
      }
      await sink.close();
      const raw = join(tmp, "expected.raw");
      writeFileSync(raw, expected);
      await qemuAccepts(dest, raw, size);
      const image = await openQcow2File(dest);
      assert.equal(await sha256Of(image), await sha256Of(new MemorySource(expected)));
      await image.close();
    });
  }

  test("kill -9 in the middle of writing, resume, close, kill again...: what was written reads back, qemu-img check is clean after every finished session", async () => {
    for (const compress of [false, "zlib"] as const) {
      const tmp = tempDir();
      const dest = join(tmp, "killed.qcow2");
      const log = join(tmp, "done.log");
      const size = 16 * 1024 * 1024;
      const child = join(tmp, "writer.mts");
      // Each session writes blocks (in a shuffled order) not yet in the log, four at a time, and
      // logs them after a flush, as a capture saves its mapfile; after `count` writes it dies of
      // SIGKILL ("kill") or closes the image ("close"; count 0: write all that is left).
      writeFileSync(
        child,
        `import { appendFileSync, existsSync, readFileSync } from "node:fs";
import { qcow2Writer } from ${JSON.stringify(WRITER)};
const [dest, log, mode, count, seed] = process.argv.slice(2);
const done = new Set(existsSync(log) ? readFileSync(log, "utf8").split("\\n").filter(Boolean).map(Number) : []);
const options = { size: ${size}, compress: ${JSON.stringify(compress)}, threads: 2 };
const sink = existsSync(dest) ? (await qcow2Writer.resume(dest, options)).sink : await qcow2Writer.create(dest, options);
const blocks = [];
for (let b = 0; b < ${size / 65536} * 2; b++) if (!done.has(b)) blocks.push(b);
let x = Number(seed);
for (let i = blocks.length - 1; i > 0; i--) { x = (x * 1103515245 + 12345) % 2147483648; const j = x % (i + 1); [blocks[i], blocks[j]] = [blocks[j], blocks[i]]; }
let written = 0;
let unlogged = [];
const write = async (b) => {
  await sink.write(b * 32768, Buffer.alloc(32768, (b * 7) % 251 + 1));
  unlogged.push(b);
  if (++written === Number(count) && mode === "kill") process.kill(process.pid, "SIGKILL");
};
const todo = mode === "close" && Number(count) > 0 ? blocks.slice(0, Number(count)) : blocks;
for (let i = 0; i < todo.length; i += 4) {
  await Promise.all(todo.slice(i, i + 4).map(write));
  if (i % 12 === 8) {
    await sink.flush();
    appendFileSync(log, unlogged.map((b) => b + "\\n").join(""));
    unlogged = [];
  }
}
await sink.close();
appendFileSync(log, unlogged.map((b) => b + "\\n").join(""));
`,
      );
      const block = (b: number) => Buffer.alloc(32768, (b * 7) % 251 + 1);
      const blocks = (size / 65536) * 2;
      const logged = () => new Set(existsSync(log) ? readFileSync(log, "utf8").split("\n").filter(Boolean).map(Number) : []);
      /** A logged block holds its data; any other holds its data (written, not yet logged) or zeros. */
      const verify = async (read: (b: number) => Promise<Buffer>, what: string) => {
        const done = logged();
        for (let b = 0; b < blocks; b++) {
          const got = await read(b);
          const ok = got.equals(block(b)) || (!done.has(b) && got.equals(Buffer.alloc(32768)));
          assert.ok(ok, `${compress || "plain"}, ${what}: block ${b} (${done.has(b) ? "logged" : "not logged"})`);
        }
      };
      const sessions = [["kill", 37], ["close", 100], ["kill", 101], ["kill", 5], ["close", 0]] as const;
      for (const [session, [mode, count]] of sessions.entries()) {
        const r = await run(process.execPath, ["--import", "tsx", child, dest, log, mode, String(count), String(session + 1)], { timeoutMs: 300_000, cwd: join(import.meta.dirname, "../..") });
        if (mode === "kill") {
          assert.equal(r.code, 128, `session ${session + 1} should have been killed: ${r.stderr}`);
          // Killed: platter reads every logged block back (and says the image is dirty)...
          const warnings: string[] = [];
          const image = await openQcow2File(dest, { warnings });
          assert.match(warnings.join(""), /not closed cleanly/);
          await verify((b) => image.read(b * 32768, 32768), `after kill ${session + 1}`);
          await image.close();
        } else {
          // ...and after every session that closed, qemu finds the image clean and reads the same.
          assert.equal(r.code, 0, r.stderr);
          const check = await run("qemu-img", ["check", dest]);
          assert.equal(check.code, 0, check.stdout);
          const raw = join(tmp, "qemu.raw");
          await sh(`qemu-img convert -O raw ${dest} ${raw}`);
          const qemuRaw = readFileSync(raw);
          await verify(async (b) => qemuRaw.subarray(b * 32768, (b + 1) * 32768), `qemu-img's reading after session ${session + 1}`);
        }
      }
      assert.equal(logged().size, blocks);
    }
  });

  test("platter convert to and from qcow2 (the command): a 1 TiB sparse disk with two data blocks, compressed and not", async () => {
    const tmp = tempDir();
    const raw = join(tmp, "sparse.raw");
    await sh(`truncate -s 1T ${raw} && printf hello | dd of=${raw} bs=1 seek=${2 ** 39} conv=notrunc status=none && head -c 100000 /dev/urandom | dd of=${raw} bs=1M seek=900000 conv=notrunc status=none`);
    for (const extra of [[], ["--compress"], ["--compress", "zstd"]]) {
      const dest = join(tmp, "sparse.qcow2");
      const r = await platter(["convert", raw, dest, "--force", ...extra]);
      assert.equal(r.code, 0, r.stderr);
      await qemuAccepts(dest, raw, 2 ** 40);
      const back = join(tmp, "back.raw");
      const r2 = await platter(["convert", dest, back, "--force", "--sparse"]);
      assert.equal(r2.code, 0, r2.stderr);
      // qemu-img compare skips holes (SEEK_DATA); cmp would read a terabyte of zeros.
      const compare = await run("qemu-img", ["compare", "-f", "raw", "-F", "raw", raw, back]);
      assert.equal(compare.code, 0, compare.stdout);
    }
  });

  test("growing the disk moves the L1 table; shrinking keeps it; qemu-img agrees on the size", async () => {
    const tmp = tempDir();
    const dest = join(tmp, "grown.qcow2");
    const sink = await qcow2Writer.create(dest, { size: 1 << 30 });
    await sink.write(5 << 20, Buffer.alloc(65536, 1));
    await sink.setSize(2 ** 41);
    await sink.write(2 ** 40 + 65536, Buffer.alloc(65536, 2));
    await sink.close();
    const check = await run("qemu-img", ["check", dest]);
    assert.equal(check.code, 0, check.stdout);
    const image = await openQcow2File(dest);
    assert.equal(image.size, 2 ** 41);
    assert.deepEqual(await image.dataRanges(0, image.size), [
      [5 << 20, 65536],
      [2 ** 40 + 65536, 65536],
    ]);
    await image.close();
    const map = JSON.parse((await run("qemu-img", ["map", "--output=json", dest])).stdout);
    assert.deepEqual(
      map.filter((e: { data: boolean }) => e.data).map((e: { start: number; length: number }) => [e.start, e.length]),
      [
        [5 << 20, 65536],
        [2 ** 40 + 65536, 65536],
      ],
    );
  });

  test("writes outside the disk, unknown compression, and resuming what platter cannot continue are refused in one line", async () => {
    const tmp = tempDir();
    const dest = join(tmp, "x.qcow2");
    const sink = await qcow2Writer.create(dest, { size: 1 << 20 });
    await assert.rejects(sink.write((1 << 20) - 512, Buffer.alloc(1024)), UsageError);
    await sink.close();
    await assert.rejects(qcow2Writer.create(join(tmp, "y.qcow2"), { size: 1 << 20, compress: "lz4" }), /zlib or zstd/);
    await assert.rejects(qcow2Writer.create(join(tmp, "y.qcow2"), {}), /virtual size up front/);
    await assert.rejects(qcow2Writer.create(join(tmp, "y.qcow2"), { size: 1 << 20, compress: "zlib", level: 12 }), /zlib compression level must be 0 to 9, not 12/);
    await assert.rejects(qcow2Writer.create(join(tmp, "y.qcow2"), { size: 1 << 20, compress: "zstd", level: 0 }), /zstd compression level must be 1 to 19/);
    assert.equal(existsSync(join(tmp, "y.qcow2")), false);
    assert.ok(qcow2Writer.resume);
    await assert.rejects(qcow2Writer.resume(dest, { size: 2 << 20 }), /holds a 1048576-byte disk, not 2097152 bytes/);
    await sh(`qemu-img create -q -f qcow2 -o compat=0.10 ${join(tmp, "v2.qcow2")} 1M`);
    await assert.rejects(qcow2Writer.resume(join(tmp, "v2.qcow2"), { size: 1 << 20 }), /cannot resume writing this qcow2 image: it is version 2/);
    await assert.rejects(qcow2Writer.resume(dest, { size: 1 << 20, compress: "zstd" }), /uses zlib compression, not zstd/);
  });
});
