import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { readFileSync, statSync, truncateSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { after, before, describe, test } from "node:test";
import { bzip2Format, bzip2Writer, type Bzip2Source } from "../../src/container/bzip2/index.js";
import { detectionBytes } from "../../src/container/format.js";
import { CONTAINER_FORMATS } from "../../src/container/registry.js";
import { CONTAINER_WRITERS } from "../../src/container/writers.js";
import { scanMarkers } from "../../src/container/bzip2/marker-scan.js";
import { decodePlatterTrailer, encodePlatterTrailer, TRAILER_BYTES } from "../../src/container/bzip2/platter-trailer.js";
import { CorruptImageError, PlatterError, UsageError } from "../../src/errors.js";
import { MemorySource } from "../../src/io/memory-source.js";
import { needs } from "../helpers/env.js";
import { fixture } from "../helpers/fixtures.js";
import { prng } from "../helpers/fs-fuzz.js";
import { run, sh } from "../helpers/run.js";
import { tempDir } from "../helpers/tmp.js";
import { assertSameBytes, assertSameFilesystems, closeOpened, memoryContext, openFile, peakMemoryOf, sha256, sourceSha256 } from "./gzip-bzip2-helpers.js";

after(closeOpened);

const TOOLS = ["gzip", "pigz", "bgzip", "bzip2", "pbzip2"];

async function openBz2(path: string, warnings: string[] = [], context = memoryContext(warnings)): Promise<Bzip2Source> {
  return (await bzip2Format.open(await openFile(path), context)) as Bzip2Source;
}

async function openBuffer(data: Buffer, warnings: string[] = []): Promise<Bzip2Source> {
  return (await bzip2Format.open(new MemorySource(data, 512, "test.bz2"), memoryContext(warnings))) as Bzip2Source;
}

async function readAll(source: { size: number; read(o: number, l: number): Promise<Buffer> }): Promise<Buffer> {
  const parts: Buffer[] = [];
  for (let at = 0; at < source.size; at += 1 << 20) parts.push(await source.read(at, Math.min(1 << 20, source.size - at)));
  return Buffer.concat(parts);
}

async function writePlatterBz2(path: string, raw: Buffer): Promise<void> {
  const sink = await bzip2Writer.create(path, {});
  for (let at = 0; at < raw.length; at += 1 << 20) await sink.write(at, raw.subarray(at, Math.min(raw.length, at + (1 << 20))));
  await sink.setSize(raw.length);
  await sink.close();
}

describe("bzip2 images made by bzip2, pbzip2 and cat read as bzip2 -d gives them", { skip: needs(...TOOLS) }, () => {
  let mbr: string;
  let raw: Buffer;
  let dir: string;
  before(async () => {
    mbr = await fixture("make-mbr-image.sh", "mbr.img");
    raw = readFileSync(mbr);
    dir = await fixture("make-compressed-gz-bz2.sh", "compressed-mbr", [mbr]);
  });

  for (const [name, streams] of [["bzip2.bz2", 1], ["pbzip2.bz2", 0], ["concat.bz2", 0]] as const) {
    test(`${name}: every byte as bzip2 -d gives it, random reads too`, async () => {
      const warnings: string[] = [];
      const bz = await openBz2(join(dir, name), warnings);
      assert.equal(bz.describe().indexedBy, "decoding pass");
      if (streams) assert.equal(bz.describe().streams, streams);
      else assert.ok((bz.describe().streams as number) > 10, "one stream per 900 kB");
      await assertSameBytes(bz, mbr, raw);
      assert.deepEqual(warnings, []);
    });
  }

  test("the registry tells them apart by magic: every tool's .gz is gzip, every .bz2 bzip2, the raw disk neither", async () => {
    const detected = async (path: string) => {
      const source = await openFile(path);
      const { head, tail } = await detectionBytes(source);
      const names: string[] = [];
      for (const format of CONTAINER_FORMATS) if (await format.detect(head, source, tail)) names.push(format.name);
      await source.close();
      return names;
    };
    for (const name of ["gzip.gz", "pigz.gz", "pigz-i.gz", "bgzip.gz", "concat.gz"]) assert.deepEqual(await detected(join(dir, name)), ["gzip"], name);
    for (const name of ["bzip2.bz2", "pbzip2.bz2", "concat.bz2"]) assert.deepEqual(await detected(join(dir, name)), ["bzip2"], name);
    assert.deepEqual(await detected(mbr), []);
    assert.deepEqual(
      CONTAINER_WRITERS.filter((w) => w.name === "gzip" || w.name === "bzip2").map((w) => [w.name, w.extensions]),
      [["gzip", [".gz"]], ["bzip2", [".bz2"]]],
    );
  });

  test("bzip2.bz2: partition table and every file of ext4, FAT32 and ext2 as on the raw disk", async () => {
    const files = await assertSameFilesystems(await openBz2(join(dir, "bzip2.bz2")), await openFile(mbr));
    assert.ok(files >= 10);
  });

  test("runs of zeros are known from the index: holes in dataRanges, read without decoding", async () => {
    const bz = await openBz2(join(dir, "pbzip2.bz2"));
    const ranges = await bz.dataRanges(0, bz.size);
    const data = ranges.reduce((sum, [, length]) => sum + length, 0);
    assert.ok(data < bz.size / 2, `${data} of ${bz.size} bytes hold data`);
    for (const [from, length] of ranges) assert.ok(from >= 0 && from + length <= bz.size);
    // Every byte outside the ranges is zero on the raw disk.
    let at = 0;
    for (const [from, length] of [...ranges, [raw.length, 0] as [number, number]]) {
      assert.ok(raw.subarray(at, from).every((b) => b === 0), `hole ${at}..${from}`);
      at = from + length;
    }
  });

  test("the index of a decoded file is kept in the IndexCache: the second open decodes nothing", async () => {
    const context = memoryContext();
    await openBz2(join(dir, "pbzip2.bz2"), [], context);
    const second = await openBz2(join(dir, "pbzip2.bz2"), [], context);
    assert.equal(second.describe().indexedBy, "cache");
    await assertSameBytes(second, mbr, raw, 30);
  });
});

describe("platter's .bz2: pbzip2's streams and a trailer with the sizes", { skip: needs(...TOOLS) }, () => {
  let mbr: string;
  let raw: Buffer;
  const dir = tempDir();
  const out = join(dir, "mbr.img.bz2");
  before(async () => {
    mbr = await fixture("make-mbr-image.sh", "mbr.img");
    raw = readFileSync(mbr);
    await writePlatterBz2(out, raw);
  });

  test("bzip2 -t and pbzip2 -t accept it; bzip2 -d, pbzip2 -d and 7zz give the disk back", async () => {
    await sh(`bzip2 -t ${out}`);
    await sh(`pbzip2 -t ${out}`);
    for (const tool of ["bzip2 -dc", "pbzip2 -dc", "7zz e -so"]) {
      if (tool.startsWith("7zz") && needs("7zz")) continue;
      const r = await run("bash", ["-c", `${tool} ${out}`]);
      assert.equal(r.code, 0, `${tool}: ${r.stderr}`);
      assert.equal(sha256(r.stdoutBytes), sha256(raw), tool);
    }
  });

  test("before its trailer, the file is byte for byte what pbzip2 -9 writes", async () => {
    const reference = (await run("bash", ["-c", `pbzip2 -9 -c ${mbr}`])).stdoutBytes;
    const file = readFileSync(out);
    assert.ok(file.subarray(0, file.length - TRAILER_BYTES).equals(reference));
    assert.deepEqual(decodePlatterTrailer(file.subarray(file.length - TRAILER_BYTES)), { chunkSize: 900000, imageSize: raw.length });
  });

  test("platter opens it from its trailer (nothing decoded) and reads every byte and file the same", async () => {
    const warnings: string[] = [];
    const bz = await openBz2(out, warnings);
    assert.equal(bz.describe().indexedBy, "trailer");
    assert.deepEqual(warnings, []);
    await assertSameBytes(bz, mbr, raw);
    await assertSameFilesystems(bz, await openFile(mbr));
  });

  test("resume after kill -9: cut back to the last whole chunk, go on, and bzip2 -d gives the disk", async () => {
    const path = join(dir, "killed.bz2");
    const child = join(dir, "writer.mts");
    const src = fileURLToPath(new URL("../../src/container/bzip2/index.ts", import.meta.url));
    writeFileSync(
      child,
      `import { readFileSync } from "node:fs";
import { bzip2Writer } from ${JSON.stringify(src)};
const raw = readFileSync(${JSON.stringify(mbr)});
const sink = await bzip2Writer.create(${JSON.stringify(path)}, {});
for (let at = 0; at < raw.length; at += 1 << 20) {
  await sink.write(at, raw.subarray(at, at + (1 << 20)));
  await sink.flush();
  if (at === 12 << 20) process.stdout.write("ready\\n");
  await new Promise((r) => setTimeout(r, 20));
}
`,
    );
    const proc = spawn(process.execPath, ["--import", "tsx", child], { stdio: ["ignore", "pipe", "pipe"] });
    let stderr = "";
    proc.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
    const closed = new Promise((r) => proc.on("close", r));
    await new Promise<void>((resolve, reject) => {
      proc.stdout.on("data", (d: Buffer) => d.toString().includes("ready") && resolve());
      proc.on("close", (code) => reject(new Error(`the writer ended (${code}) before it was killed: ${stderr}`)));
    });
    proc.kill("SIGKILL");
    await closed;
    truncateSync(path, statSync(path).size - 7);
    const { sink, committed } = (await bzip2Writer.resume?.(path, {})) ?? assert.fail("bzip2 resumes");
    assert.ok(committed >= 10 * 900000 && committed % 900000 === 0 && committed < raw.length, `committed ${committed}`);
    for (let at = committed; at < raw.length; at += 1 << 20) await sink.write(at, raw.subarray(at, Math.min(raw.length, at + (1 << 20))));
    await sink.setSize(raw.length);
    await sink.close();
    const r = await run("bash", ["-c", `bzip2 -dc ${path}`]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(sha256(r.stdoutBytes), sha256(raw));
    assert.equal((await openBz2(path)).describe().indexedBy, "trailer");
  });

  test("resume of a finished file keeps its whole chunks; another level, or someone else's bzip2, is refused", async () => {
    const path = join(dir, "again.bz2");
    await writePlatterBz2(path, raw.subarray(0, 2_500_000));
    const { sink, committed } = (await bzip2Writer.resume?.(path, {})) ?? assert.fail("bzip2 resumes");
    assert.equal(committed, 1_800_000, "the short last chunk goes, whole ones stay");
    await sink.write(committed, raw.subarray(committed, 3_000_000));
    await sink.setSize(3_000_000);
    await sink.close();
    assert.equal(sha256((await run("bash", ["-c", `bzip2 -dc ${path}`])).stdoutBytes), sha256(raw.subarray(0, 3_000_000)));
    await assert.rejects(bzip2Writer.resume?.(path, { level: 5 }) as Promise<unknown>, UsageError);
    const foreign = join(dir, "foreign.bz2");
    await sh(`head -c 3000000 ${mbr} | bzip2 -9 > ${foreign}`);
    await assert.rejects(bzip2Writer.resume?.(foreign, {}) as Promise<unknown>, UsageError);
  });

  test("a trailer that lies about the image size is not believed: the file is indexed by decoding, with a warning", async () => {
    const file = Buffer.from(readFileSync(out));
    const lying = encodePlatterTrailer({ chunkSize: 900000, imageSize: raw.length + 5_000_000 });
    lying.copy(file, file.length - TRAILER_BYTES);
    const warnings: string[] = [];
    const bz = await openBuffer(file, warnings);
    assert.equal(bz.describe().indexedBy, "decoding pass");
    assert.match(warnings.join("\n"), /trailer promises/);
    assert.equal(await sourceSha256(bz), sha256(raw));
  });
});

describe("damaged bzip2 files: a clean error naming bzip2 and the offset, the data before the damage readable", { skip: needs(...TOOLS) }, () => {
  let raw: Buffer;
  let single: Buffer;
  let platter: Buffer;
  const dir = tempDir();
  before(async () => {
    const mbr = await fixture("make-mbr-image.sh", "mbr.img");
    raw = readFileSync(mbr);
    const compressed = await fixture("make-compressed-gz-bz2.sh", "compressed-mbr", [mbr]);
    single = readFileSync(join(compressed, "bzip2.bz2"));
    await writePlatterBz2(join(dir, "platter.bz2"), raw);
    platter = readFileSync(join(dir, "platter.bz2"));
  });

  test("cut short anywhere: what decodes before the cut reads as the raw disk; past it, an error naming bzip2 and the offset", async () => {
    for (const [name, file] of [["bzip2", single], ["platter", platter]] as const) {
      for (const fraction of [0.05, 0.5, 0.97]) {
        const cut = Math.floor(file.length * fraction);
        const warnings: string[] = [];
        const bz = await openBuffer(file.subarray(0, cut), warnings);
        assert.ok(bz.size <= raw.length, `${name} cut at ${cut}`);
        assert.match(warnings.join("\n"), /bzip2 .*offset \d+/, `${name} cut at ${cut}: a warning says where`);
        assert.ok((await readAll(bz)).equals(raw.subarray(0, bz.size)), `${name} cut at ${cut}: the bytes before the damage`);
        await assert.rejects(bz.read(bz.size, 1), (err: Error) => err instanceof CorruptImageError && /bzip2.*offset \d+/.test(err.message));
      }
    }
  });

  test("bit flips: open and every read either succeed with the raw bytes or fail with a CorruptImageError", async () => {
    const random = prng(5);
    for (let i = 0; i < 8; i++) {
      const copy = Buffer.from(single);
      const at = 4 + Math.floor(random() * (copy.length - 4));
      copy[at] = (copy[at] as number) ^ (1 << i % 8);
      const warnings: string[] = [];
      let bz: Bzip2Source;
      try {
        bz = await openBuffer(copy, warnings);
      } catch (err) {
        assert.ok(err instanceof PlatterError, `flip at ${at}: ${String(err)}`);
        continue;
      }
      if (warnings.length === 0) {
        assert.equal(await sourceSha256(bz), sha256(raw), `flip at ${at} went unnoticed`);
        continue;
      }
      try {
        assert.ok((await readAll(bz)).equals(raw.subarray(0, bz.size)), `flip at ${at}: the bytes before the damage`);
      } catch (err) {
        assert.ok(err instanceof CorruptImageError, `flip at ${at}: ${String(err)}`);
      }
    }
  });

  test("a block magic inside the compressed data (bytes chosen so bzip2's symbol map spells it) splits no block", async () => {
    // Used bytes 0..47 as the bitmap 0x3141 0x5926 0x5359, and one byte of each other range: every
    // block's symbol map then holds 0x314159265359, bit-aligned, a false block start.
    const used: number[] = [];
    [0x3141, 0x5926, 0x5359].forEach((bits, range) => {
      for (let j = 0; j < 16; j++) if ((bits >> (15 - j)) & 1) used.push(range * 16 + j);
    });
    for (let range = 3; range < 16; range++) used.push(range * 16);
    // No byte twice in a row: bzip2's run-length step would add count bytes to the map.
    const random = prng(3);
    const data = Buffer.alloc(2_500_000);
    for (let i = 0; i < data.length; i++) {
      do data[i] = used[Math.floor(random() * used.length)] as number;
      while (i > 0 && data[i] === data[i - 1]);
    }
    const path = join(dir, "magic.bz2");
    writeFileSync(path, (await run("bash", ["-c", "bzip2 -9"], { input: data })).stdoutBytes);
    const markers = await scanMarkers(new MemorySource(readFileSync(path)));
    const blocks = markers.filter((m) => m.kind === "block").length;
    assert.ok(blocks >= 6, `${blocks} block magics found for 3 blocks: the false ones are there`);
    const bz = await openBz2(path);
    assert.equal(bz.describe().units, 3);
    assert.ok((await readAll(bz)).equals(data));
    // pbzip2's streams carry the same false magic.
    const pb = join(dir, "magic-pbzip2.bz2");
    writeFileSync(pb, (await run("bash", ["-c", "pbzip2 -9 -c"], { input: data })).stdoutBytes);
    assert.ok((await readAll(await openBz2(pb))).equals(data));
  });

  test("a bzip2 of 256 MiB of zeros (blocks of 46 MB each): indexed and read in bounded memory (peak RSS of a child)", async () => {
    const path = join(dir, "zeros.bz2");
    await sh(`head -c 256M /dev/zero | bzip2 -9 > ${path}`, { timeoutMs: 300_000 });
    const r = await peakMemoryOf(
      dir,
      "container/bzip2/index.ts",
      "bzip2Format",
      path,
      `const source = await format.open(await open(path), { openRelated: async () => { throw new Error("no"); } });
const into = Buffer.alloc(4 << 20);
let odd = 0;
for (let at = 0; at < source.size; at += into.length) {
  const buf = await source.read(at, Math.min(into.length, source.size - at), into);
  if (buf[0] !== 0 || buf[buf.length - 1] !== 0) odd++;
}
console.log("size", source.size, "odd", odd);`,
    );
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /size 268435456 odd 0/);
    assert.ok(r.growthMiB < 150, `peak RSS grew by ${r.growthMiB.toFixed(0)} MiB`);
  });
});
