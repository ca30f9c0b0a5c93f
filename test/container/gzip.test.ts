import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { readFileSync, statSync, truncateSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { after, before, describe, test } from "node:test";
import { constants, deflateRawSync, gzipSync, inflateRawSync } from "node:zlib";
import { deflatePreface } from "../../src/container/gzip/deflate-preface.js";
import { gzipFormat, gzipWriter, type GzipSource } from "../../src/container/gzip/index.js";
import { decodeGzipHeader } from "../../src/container/gzip/member-header.js";
import { SequentialGzipSource } from "../../src/container/gzip/sequential-source.js";
import { UsageError } from "../../src/errors.js";
import { MemorySource } from "../../src/io/memory-source.js";
import { needs } from "../helpers/env.js";
import { fixture } from "../helpers/fixtures.js";
import { prng } from "../helpers/fs-fuzz.js";
import { run, sh } from "../helpers/run.js";
import { tempDir } from "../helpers/tmp.js";
import { assertSameBytes, assertSameFilesystems, closeOpened, memoryContext, openFile, sha256, sourceSha256 } from "./gzip-bzip2-helpers.js";

after(closeOpened);

const TOOLS = ["gzip", "pigz", "bgzip", "bzip2", "pbzip2"];

async function openGz(path: string, warnings: string[] = [], context = memoryContext(warnings)): Promise<GzipSource> {
  return (await gzipFormat.open(await openFile(path), context)) as GzipSource;
}

/** Write `raw` through platter's gzip writer in uneven pieces, zero runs as writeZeros. */
async function writePlatterGz(path: string, raw: Buffer, options: Record<string, unknown> = {}): Promise<void> {
  const sink = await gzipWriter.create(path, options);
  const random = prng(7);
  for (let at = 0; at < raw.length; ) {
    const n = Math.min(raw.length - at, 1 + Math.floor(random() * (700 << 10)));
    const piece = raw.subarray(at, at + n);
    if (piece.every((b) => b === 0)) await sink.writeZeros(at, n);
    else await sink.write(at, piece);
    at += n;
  }
  await sink.setSize(raw.length);
  await sink.close();
}

describe("gzip images made by gzip, pigz, bgzip and cat read as the tools decode them", { skip: needs(...TOOLS) }, () => {
  let mbr: string;
  let raw: Buffer;
  let dir: string;
  before(async () => {
    mbr = await fixture("make-mbr-image.sh", "mbr.img");
    raw = readFileSync(mbr);
    dir = await fixture("make-compressed-gz-bz2.sh", "compressed-mbr", [mbr]);
  });

  const cases: Array<[string, string, number]> = [
    ["gzip.gz", "stream", 1],
    ["pigz.gz", "stream", 1],
    ["pigz-i.gz", "stream", 1],
    ["bgzip.gz", "bgzf", 0],
    ["concat.gz", "stream", 2],
  ];
  for (const [name, layout, members] of cases) {
    test(`${name}: every byte as gzip -d gives it, random reads too, layout ${layout}`, async () => {
      const warnings: string[] = [];
      const gz = await openGz(join(dir, name), warnings);
      assert.equal(gz.describe().layout, layout);
      if (members) assert.equal(gz.describe().members, members);
      else assert.ok((gz.describe().members as number) > 1000, "BGZF: many 64 KiB members");
      assert.equal(gz.seekable, true);
      await assertSameBytes(gz, mbr, raw);
      assert.deepEqual(warnings, []);
    });
  }

  test("gzip.gz and bgzip.gz: partition table and every file of ext4, FAT32 and ext2 as on the raw disk", async () => {
    const disk = await openFile(mbr);
    for (const name of ["gzip.gz", "bgzip.gz"]) {
      const files = await assertSameFilesystems(await openGz(join(dir, name)), disk);
      assert.ok(files >= 10, `${name}: ${files} files compared`);
    }
  });

  test("a GPT disk (ESP, ext4, swap, exFAT) through gzip: the backup table at the end and every file read the same", async () => {
    const gpt = await fixture("make-gpt-image.sh", "gpt.img");
    const gz = join(tempDir(), "gpt.img.gz");
    await sh(`gzip -c ${gpt} > ${gz}`);
    const decoded = await openGz(gz);
    assert.equal(await sourceSha256(decoded), sha256(readFileSync(gpt)));
    await assertSameFilesystems(decoded, await openFile(gpt));
  });

  test("the index of a single stream is kept in the IndexCache: the second open inflates nothing", async () => {
    const context = memoryContext();
    const first = await openGz(join(dir, "pigz.gz"), [], context);
    assert.equal(first.describe().indexedBy, "inflate pass");
    assert.ok(context.cache.size === 1);
    const second = await openGz(join(dir, "pigz.gz"), [], context);
    assert.equal(second.describe().indexedBy, "cache");
    await assertSameBytes(second, mbr, raw, 50);
    // A cache for another file (or damaged) is not trusted: the index is built again.
    const [name, data] = [...context.cache.entries()][0] as [string, Buffer];
    context.cache.set(name, data.subarray(0, data.length - 100));
    const third = await openGz(join(dir, "pigz.gz"), [], context);
    assert.equal(third.describe().indexedBy, "inflate pass");
  });

  test("without the system zlib, reads go front to back: backward ones start over, bytes the same", async () => {
    const source = await openFile(join(dir, "gzip.gz"));
    const seq = await SequentialGzipSource.open(source);
    assert.equal(seq.seekable, false);
    assert.equal(seq.size, raw.length);
    for (const offset of [5 << 20, 1 << 20, 40 << 20, 0, raw.length - 4096]) {
      assert.ok((await seq.read(offset, 70000 > raw.length - offset ? raw.length - offset : 70000)).equals(raw.subarray(offset, offset + 70000)));
    }
    await seq.close();
    // Cut short: what decodes before the cut, and a warning.
    const file = readFileSync(join(dir, "gzip.gz"));
    const warnings: string[] = [];
    const cut = await SequentialGzipSource.open(new MemorySource(file.subarray(0, Math.floor(file.length * 0.6))), (w) => warnings.push(w));
    assert.ok(cut.size > 0 && cut.size < raw.length);
    assert.match(warnings.join("\n"), /damaged after \d+ decoded bytes/);
    assert.ok((await cut.read(0, cut.size)).equals(raw.subarray(0, cut.size)));
    await cut.close();
  });
});

describe("platter's .gz: members that say their size", { skip: needs(...TOOLS) }, () => {
  let mbr: string;
  let raw: Buffer;
  const dir = tempDir();
  const out = join(dir, "mbr.img.gz");
  before(async () => {
    mbr = await fixture("make-mbr-image.sh", "mbr.img");
    raw = readFileSync(mbr);
    await writePlatterGz(out, raw);
  });

  test("gzip -t and pigz -t accept it; gzip -d, pigz -d and zcat give the disk back", async () => {
    for (const check of [`gzip -t ${out}`, `pigz -t ${out}`]) await sh(check);
    for (const tool of ["gzip -dc", "pigz -dc", "zcat"]) {
      const r = await run("bash", ["-c", `${tool} ${out}`]);
      assert.equal(r.code, 0, `${tool}: ${r.stderr}`);
      assert.equal(sha256(r.stdoutBytes), sha256(raw), tool);
    }
  });

  test("platter opens it from its headers (no inflating), complete, and reads every byte and file the same", async () => {
    const warnings: string[] = [];
    const gz = await openGz(out, warnings);
    assert.deepEqual(gz.describe().layout, "platter");
    assert.equal(gz.describe().indexedBy, "headers");
    assert.equal(gz.describe().complete, true);
    assert.deepEqual(warnings, []);
    await assertSameBytes(gz, mbr, raw);
    await assertSameFilesystems(gz, await openFile(mbr));
  });

  test("the size is gzip -6's within 1%, plus at most 64 bytes per 256 KiB member (mostly zeros here: a member cannot shrink them below ~290 bytes)", async () => {
    const reference = Number((await run("bash", ["-c", `gzip -6 -c ${mbr} | wc -c`])).stdout.trim());
    const members = raw.length / (256 << 10);
    assert.ok(statSync(out).size < reference * 1.01 + members * 64, `${statSync(out).size} vs gzip -6 ${reference}`);
  });

  test("runs of zeros cost one encoded member, written again and again", async () => {
    const path = join(dir, "zeros.gz");
    const sink = await gzipWriter.create(path, {});
    await sink.writeZeros(0, 64 << 20);
    await sink.setSize(64 << 20);
    await sink.close();
    const file = readFileSync(path);
    const member = file.subarray(0, decodeGzipHeader(file, "zeros")?.length === 24 ? file.readUInt32LE(16) : 0);
    assert.ok(member.length > 0 && member.length < 1000, `a member of 256 KiB of zeros: ${member.length} bytes`);
    for (let i = 0; i < 256; i++) assert.ok(file.subarray(i * member.length, (i + 1) * member.length).equals(member), `member ${i}`);
    await sh(`gzip -t ${path}`);
    const gz = await openGz(path);
    assert.equal(gz.size, 64 << 20);
  });

  test("a file without its end member (capture interrupted) reads as what it holds, with a warning", async () => {
    const path = join(dir, "open.gz");
    const sink = await gzipWriter.create(path, {});
    await sink.write(0, raw.subarray(0, 3 << 20));
    await sink.close(); // no setSize: the image is not complete
    const warnings: string[] = [];
    const gz = await openGz(path, warnings);
    assert.equal(gz.size, 3 << 20);
    assert.equal(gz.describe().complete, false);
    assert.match(warnings.join("\n"), /no end member/);
    await sh(`gzip -t ${path}`);
  });

  test("resume after kill -9: cut back to the last whole member, go on, and gzip -d gives the disk", async () => {
    const path = join(dir, "killed.gz");
    const child = join(dir, "writer.mts");
    const src = fileURLToPath(new URL("../../src/container/gzip/index.ts", import.meta.url));
    writeFileSync(
      child,
      `import { readFileSync } from "node:fs";
import { gzipWriter } from ${JSON.stringify(src)};
const raw = readFileSync(${JSON.stringify(mbr)});
const sink = await gzipWriter.create(${JSON.stringify(path)}, {});
for (let at = 0; at < raw.length; at += 1 << 20) {
  await sink.write(at, raw.subarray(at, at + (1 << 20)));
  await sink.flush();
  if (at === 20 << 20) process.stdout.write("ready\\n");
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
    // What kill -9 can leave: a member cut short.
    truncateSync(path, statSync(path).size - 100);
    const { sink, committed } = await gzipWriter.resume?.(path, {}) ?? assert.fail("gzip resumes");
    assert.ok(committed >= 20 << 20 && committed % (256 << 10) === 0 && committed < raw.length, `committed ${committed}`);
    for (let at = committed; at < raw.length; at += 1 << 20) await sink.write(at, raw.subarray(at, Math.min(raw.length, at + (1 << 20))));
    await sink.setSize(raw.length);
    await sink.close();
    const r = await run("bash", ["-c", `gzip -dc ${path}`]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(sha256(r.stdoutBytes), sha256(raw));
    assert.equal((await openGz(path)).describe().complete, true);
  });

  test("resume of a finished file keeps every byte; of someone else's gzip is refused", async () => {
    const path = join(dir, "again.gz");
    await writePlatterGz(path, raw.subarray(0, 5 << 20));
    const { sink, committed } = await gzipWriter.resume?.(path, {}) ?? assert.fail("gzip resumes");
    assert.equal(committed, 5 << 20);
    await sink.write(committed, raw.subarray(committed, 6 << 20));
    await sink.setSize(6 << 20);
    await sink.close();
    assert.equal(sha256((await run("bash", ["-c", `zcat ${path}`])).stdoutBytes), sha256(raw.subarray(0, 6 << 20)));
    const foreign = join(dir, "foreign.gz");
    writeFileSync(foreign, gzipSync(raw.subarray(0, 1 << 20)));
    await assert.rejects(gzipWriter.resume?.(foreign, {}) as Promise<unknown>, UsageError);
  });

  test("a level or member size out of range is a usage error, before any file is made", async () => {
    const path = join(dir, "never.gz");
    await assert.rejects(gzipWriter.create(path, { level: 11 }), UsageError);
    await assert.rejects(gzipWriter.create(path, { memberSize: 1000 }), UsageError);
    assert.throws(() => statSync(path));
  });
});

describe("deflate preface: starting a raw inflate at any bit, with a window", () => {
  test("a block starting at each of the 8 bit offsets of a byte decodes to the stream's output, matches reaching into the window", () => {
    const text = Buffer.from(Array.from({ length: 3000 }, (_, i) => `line ${i % 97} of the sample ${i % 13}\n`).join(""));
    const [history, rest] = [text.subarray(0, 40000), text.subarray(40000)];
    // A raw stream of `rest` whose matches reach back into `history`, as a block after an access point does.
    const stream = deflateRawSync(rest, { dictionary: history, level: 6 });
    for (let stray = 0; stray < 8; stray++) {
      // The same stream after `stray` bits of something else (deflate packs bits from the least significant).
      const shifted = Buffer.alloc(stream.length + 1);
      for (let j = 0; j <= stream.length; j++) {
        const previous = j > 0 ? (stream[j - 1] as number) >>> (8 - stray) : 0b1010101 & ((1 << stray) - 1);
        shifted[j] = (((stream[j] ?? 0) << stray) | (stray ? previous : 0)) & 0xff;
      }
      // The access point: byte `in` 1 (0 when aligned), with 8 - stray bits of byte 0 already in the block.
      const [at, bits] = stray ? [1, 8 - stray] : [0, 0];
      const window = history.subarray(-32768);
      const input = Buffer.concat([deflatePreface(window, bits, bits ? (shifted[0] as number) : 0), shifted.subarray(at)]);
      const out = inflateRawSync(input, { finishFlush: constants.Z_SYNC_FLUSH });
      assert.ok(out.subarray(window.length).equals(rest), `block at bit ${stray}`);
    }
  });

  test("the alignment blocks are a stream zlib accepts whole: the 93-bit dynamic block and the fixed ones", () => {
    // The point's block is a final empty fixed block (10 bits: 1, 01, seven zeros): its first `bits` bits in the partial byte.
    const FINAL_EMPTY = 0b11;
    for (let bits = 0; bits < 8; bits++) {
      const partial = (FINAL_EMPTY & ((1 << bits) - 1)) << (8 - bits);
      const rest = FINAL_EMPTY >>> bits;
      const tail = Buffer.from([rest & 0xff, rest >>> 8]);
      const out = inflateRawSync(Buffer.concat([deflatePreface(Buffer.alloc(0), bits, partial), tail]));
      assert.equal(out.length, 0, `bits ${bits}`);
    }
  });
});
