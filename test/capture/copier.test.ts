import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { existsSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { PassThrough } from "node:stream";
import { describe, test } from "node:test";
import { capture } from "../../src/capture/capture.js";
import { decodeMapfile } from "../../src/capture/mapfile.js";
import type { BlockSource } from "../../src/io/block-source.js";
import { FaultyCopySource, FaultySource, type FaultRange } from "../helpers/faulty-source.js";
import { openSource } from "../../src/io/file-source.js";
import { MemorySource } from "../../src/io/memory-source.js";
import { pattern, range, SECTOR, seededRandom, zeroed } from "../helpers/data.js";
import { needs } from "../helpers/env.js";
import { run, sh, untilReady } from "../helpers/run.js";
import { tempDir } from "../helpers/tmp.js";

/** How many reads touched each sector. */
function readsPerSector(log: Array<[number, number]>): Map<number, number> {
  const counts = new Map<number, number>();
  for (const [offset, length] of log) {
    for (let s = Math.floor(offset / SECTOR); s < Math.ceil((offset + length) / SECTOR); s++) counts.set(s, (counts.get(s) ?? 0) + 1);
  }
  return counts;
}

async function sha256sum(path: string): Promise<string> {
  return (await sh(`sha256sum ${path}`)).split(" ")[0];
}

describe("capture from a faulty source", () => {
  test("one bad sector in the middle of a 1 MiB block loses exactly that sector; the hash equals sha256sum of the image", async () => {
    const dir = tempDir();
    const data = pattern(4 << 20);
    const bad = 2048 + 1000; // inside the second 1 MiB block
    const source = new FaultySource(new MemorySource(data), [{ first: bad }]);
    const dest = join(dir, "out.img");
    const r = await capture({ source, dest, mapPath: join(dir, "out.map"), hashes: ["sha256"] });
    assert.equal(r.complete, true);
    assert.equal(r.bytesUnreadable, SECTOR);
    assert.deepEqual(r.badRanges, [[bad * SECTOR, SECTOR]]);
    assert.ok(readFileSync(dest).equals(zeroed(data, [bad])), "image = source with one sector zeroed");
    assert.equal(r.hashes.sha256, await sha256sum(dest));
    // Like ddrescue, each sector is read at most twice: in its block, then alone.
    const counts = readsPerSector(source.log);
    assert.equal(counts.get(bad), 2);
    assert.ok(Math.max(...counts.values()) <= 2);
    assert.equal(counts.get(0), 1, "good blocks are read once");
  });

  test("bad ranges stay zero-filled, weak sectors come back with --retries; ddrescuelog lists exactly the bad sectors", {
    skip: needs("ddrescuelog"),
  }, async () => {
    const dir = tempDir();
    const data = pattern(6 << 20, 2);
    const faults: FaultRange[] = [
      { first: 10 }, // in the very first block
      { first: 4000, last: 4095 }, // 48 KiB
      { first: 6000, last: 6003, failures: 2 }, // weak: fails in the block read and alone, then reads
      { first: 12287 }, // the last sector
    ];
    const source = new FaultySource(new MemorySource(data), faults);
    const dest = join(dir, "out.img");
    const mapPath = join(dir, "out.map");
    const r = await capture({ source, dest, mapPath, retries: 1 });
    const bad = [10, ...range(4000, 4095), 12287];
    assert.ok(readFileSync(dest).equals(zeroed(data, bad)));
    assert.equal(r.bytesUnreadable, bad.length * SECTOR);
    assert.deepEqual(r.badRanges, [
      [10 * SECTOR, SECTOR],
      [4000 * SECTOR, 96 * SECTOR],
      [12287 * SECTOR, SECTOR],
    ]);
    const listed = (await sh(`ddrescuelog -l- -b512 ${mapPath}`)).trim().split("\n").map(Number);
    assert.deepEqual(listed, bad);
    assert.equal(decodeMapfile(readFileSync(mapPath, "utf8")).currentStatus, "+");
  });

  test("a large bad area is skipped, not read block by block: no sector is read more than twice before retrying", async () => {
    const dir = tempDir();
    const data = pattern(32 << 20, 3);
    const badFirst = (8 << 20) / SECTOR;
    const badLast = (12 << 20) / SECTOR - 1; // 4 MiB of bad sectors
    const source = new FaultySource(new MemorySource(data), [{ first: badFirst, last: badLast }]);
    const dest = join(dir, "out.img");
    const r = await capture({ source, dest });
    assert.equal(r.bytesUnreadable, 4 << 20);
    assert.ok(readFileSync(dest).equals(zeroed(data, range(badFirst, badLast))));
    const counts = readsPerSector(source.log);
    assert.ok(Math.max(...counts.values()) <= 2, "at most two reads per sector");
    const failedLargeReads = source.log.filter(([o, len]) => len > SECTOR && o < (12 << 20) && o + len > 8 << 20).length;
    assert.ok(failedLargeReads <= 8, `${failedLargeReads} large reads touched the bad area`);
  });

  test("the holes of a sparse source are not read (SEEK_DATA), and come out as holes in DEST (du)", async () => {
    const dir = tempDir();
    const path = join(dir, "sparse.img");
    await sh(`truncate -s 256M ${path} && head -c 3M /dev/urandom | dd of=${path} bs=1M seek=100 conv=notrunc status=none`);
    const source = new FaultySource(await openSource(path), []);
    const dest = join(dir, "out.img");
    const r = await capture({ source, dest, hashes: ["sha256"] });
    await source.close();
    assert.equal(r.complete, true);
    const read = source.log.reduce((n, [, len]) => n + len, 0);
    assert.ok(read <= 4 << 20, `read ${read} bytes of a 256 MiB file holding 3 MiB`);
    assert.equal(r.hashes.sha256, await sha256sum(path));
    await sh(`cmp ${path} ${dest}`);
    const allocatedKiB = Number((await sh(`du -k ${dest}`)).split(/\s+/)[0]);
    assert.ok(allocatedKiB < 8 << 10, `DEST allocates ${allocatedKiB} KiB`);
  });

  test("--skip/--length: DEST starts at the window, equal to dd skip/count; the map keeps SOURCE offsets", async () => {
    const dir = tempDir();
    const data = pattern(3 << 20, 4);
    const path = join(dir, "src.img");
    writeFileSync(path, data);
    const dest = join(dir, "out.img");
    const mapPath = join(dir, "out.map");
    const r = await capture({ source: path, dest, mapPath, skip: 1536 * 1024, length: 512 * 1024, hashes: ["md5"] });
    assert.equal(r.size, 512 * 1024);
    await sh(`dd if=${path} of=${dir}/dd.img bs=512K skip=3 count=1 status=none && cmp ${dest} ${dir}/dd.img`);
    assert.equal(r.hashes.md5, (await sh(`md5sum ${dir}/dd.img`)).split(" ")[0]);
    const blocks = decodeMapfile(readFileSync(mapPath, "utf8")).blocks;
    assert.deepEqual(blocks, [
      { pos: 0, size: 1536 * 1024, status: "?" },
      { pos: 1536 * 1024, size: 512 * 1024, status: "+" },
      { pos: 2048 * 1024, size: 1024 * 1024, status: "?" },
    ]);
  });

  test("DEST a pipe: failing blocks are finished before they are written, the stream equals the file capture", async () => {
    const data = pattern(3 << 20, 5);
    const faults: FaultRange[] = [{ first: 5 }, { first: 3000, last: 3009 }, { first: 4100, last: 4101, failures: 1 }];
    const out = new PassThrough();
    const chunks: Buffer[] = [];
    out.on("data", (c: Buffer) => chunks.push(c));
    const source = new FaultySource(new MemorySource(data), faults);
    const r = await capture({ source, dest: "-", stdout: out, hashes: ["sha256"] });
    const streamed = Buffer.concat(chunks);
    const expected = zeroed(data, [5, ...range(3000, 3009)]);
    assert.ok(streamed.equals(expected));
    assert.equal(r.hashedFromDest, 0, "a pipe is hashed in order, never read back");
    const { createHash } = await import("node:crypto");
    assert.equal(r.hashes.sha256, createHash("sha256").update(expected).digest("hex"));
  });

  test("DEST a pipe, SOURCE sparse with holes of many MiB: the stream equals the file, hash included", async () => {
    const dir = tempDir();
    const path = join(dir, "sparse.img");
    await sh(`truncate -s 40M ${path} && for at in 3 17 39; do head -c 300K /dev/urandom | dd of=${path} bs=1K seek=$((at * 1024 + 5)) conv=notrunc status=none; done`);
    const out = new PassThrough();
    const chunks: Buffer[] = [];
    out.on("data", (c: Buffer) => chunks.push(c));
    const r = await capture({ source: path, dest: "-", stdout: out, hashes: ["sha256", "md5"] });
    assert.equal(r.complete, true);
    assert.ok(Buffer.concat(chunks).equals(readFileSync(path)));
    assert.equal(r.hashes.sha256, await sha256sum(path));
  });

  test("noTrim/noScrape (ddrescue -N/-n) leave the failing blocks for later; a second run finishes them, with the right hash", async () => {
    const dir = tempDir();
    const data = pattern(4 << 20, 7);
    const path = join(dir, "src.img");
    writeFileSync(path, data);
    const faults: FaultRange[] = [{ first: 3000 }, { first: 6000, last: 6002 }];
    const dest = join(dir, "out.img");
    const mapPath = join(dir, "out.map");
    const failing = async () => new FaultySource(await openSource(path), faults);
    const source1 = await failing();
    const first = await capture({ source: source1, dest, mapPath, noTrim: true, hashes: ["sha256"] });
    await source1.close();
    assert.equal(first.complete, false);
    assert.equal(first.bytesUnreadable, 0);
    // Blocks 1 and 2 fail (block 2 was already being read when block 1 failed).
    assert.equal(first.bytesUnfinished, 2 << 20, "the failing reads are left non-trimmed");
    assert.deepEqual(first.hashes, {});
    assert.deepEqual(decodeMapfile(readFileSync(mapPath, "utf8")).blocks.map((b) => b.status), ["+", "*", "+"]);
    const source2 = await failing();
    const second = await capture({ source: source2, dest, mapPath, hashes: ["sha256"] });
    await source2.close();
    assert.equal(second.complete, true);
    assert.ok(readFileSync(dest).equals(zeroed(data, [3000, 6000, 6001, 6002])));
    assert.equal(second.hashes.sha256, await sha256sum(dest));
  });

  test("bad spots in neighbouring blocks: trimming finds every good sector between them, nothing is left to scrape", async () => {
    const dir = tempDir();
    const data = pattern(4 << 20, 8);
    const faults: FaultRange[] = [{ first: 3000 }, { first: 6000, last: 6002 }];
    const source = new FaultySource(new MemorySource(data), faults);
    const r = await capture({ source, dest: join(dir, "out.img"), mapPath: join(dir, "out.map"), noScrape: true });
    assert.equal(r.bytesUnfinished, 0);
    assert.equal(r.bytesUnreadable, 4 * SECTOR);
    assert.ok(Math.max(...readsPerSector(source.log).values()) <= 2, "at most two reads per sector");
  });

  test("hammer: random bad areas, block sizes and DEST kinds: every good sector kept, every bad one zero, none read more than twice", async () => {
    const dir = tempDir();
    const { createHash } = await import("node:crypto");
    const rand = seededRandom(20261125);
    for (let trial = 0; trial < 40; trial++) {
      const sectors = 64 + rand(12_000);
      const size = sectors * SECTOR - (rand(3) === 0 ? 1 + rand(SECTOR - 1) : 0);
      const data = pattern(size, trial + 1);
      // One trial in three reads a sparse file: a hole of up to 3 MiB, which a pipe DEST gets as zeros.
      const holes: Array<[number, number]> = [];
      if (trial % 3 === 0 && size > 1 << 20) {
        const at = rand(Math.floor(size / 4096)) * 4096;
        const length = Math.min(Math.floor((size - at) / 4096) * 4096, (1 + rand(768)) * 4096);
        if (length > 0) holes.push([at, length]);
        data.fill(0, at, at + length);
      }
      const faults: FaultRange[] = [];
      for (let k = rand(7); k > 0; k--) {
        const first = rand(sectors);
        const kind = rand(10);
        const length = kind < 6 ? 1 : kind < 9 ? 2 + rand(63) : 200 + rand(2800);
        faults.push({ first, last: Math.min(sectors - 1, first + length - 1) });
      }
      // A bad sector inside a hole is never read: the hole is known to be zeros.
      const inHole = (s: number) => holes.some(([at, length]) => s * SECTOR >= at && (s + 1) * SECTOR <= at + length);
      const bad = [...new Set(faults.flatMap((f) => range(f.first, f.last as number)))].filter((s) => !inHole(s)).sort((a, b) => a - b);
      const expected = zeroed(data, bad);
      const blockSize = [64 << 10, 128 << 10, 1 << 20, 4 << 20][rand(4)];
      let inner: BlockSource = new MemorySource(data);
      if (holes.length > 0) {
        const path = join(dir, `t${trial}.src`);
        writeFileSync(path, data);
        for (const [at, length] of holes) await sh(`fallocate --punch-hole --offset ${at} --length ${length} ${path}`);
        inner = await openSource(path);
      }
      const source = new FaultySource(inner, faults);
      const what = `trial ${trial}: ${size} bytes, holes ${JSON.stringify(holes)}, block ${blockSize}, bad ${JSON.stringify(faults)}`;
      let image: Buffer;
      let result;
      if (trial % 5 < 2) {
        const out = new PassThrough();
        const chunks: Buffer[] = [];
        out.on("data", (c: Buffer) => chunks.push(c));
        result = await capture({ source, dest: "-", stdout: out, blockSize, hashes: ["sha256"] });
        image = Buffer.concat(chunks);
      } else {
        const dest = join(dir, `t${trial}.img`);
        const mapPath = join(dir, `t${trial}.map`);
        result = await capture({ source, dest, mapPath, blockSize, hashes: ["sha256"] });
        image = readFileSync(dest);
        const badInMap = decodeMapfile(readFileSync(mapPath, "utf8"))
          .blocks.filter((b) => b.status === "-")
          .flatMap((b) => range(b.pos / SECTOR, Math.ceil((b.pos + b.size) / SECTOR) - 1));
        assert.deepEqual(badInMap, bad, `${what}: the map's bad sectors`);
      }
      assert.ok(image.equals(expected), `${what}: the image`);
      assert.equal(result.complete, true, what);
      assert.equal(result.bytesUnreadable, bad.reduce((n, s) => n + Math.min(SECTOR, size - s * SECTOR), 0), what);
      assert.equal(result.hashes.sha256, createHash("sha256").update(expected).digest("hex"), `${what}: the hash`);
      assert.ok(Math.max(0, ...readsPerSector(source.log).values()) <= 2, `${what}: a sector read more than twice`);
      await source.close();
    }
  });

  test("killed with SIGKILL mid-copy and resumed from its mapfile: byte-identical image, hash equals sha256sum", async () => {
    const dir = tempDir();
    const data = pattern(6 << 20, 6);
    const src = join(dir, "src.img");
    writeFileSync(src, data);
    const dest = join(dir, "out.img");
    const mapPath = join(dir, "out.map");
    const faults = JSON.stringify([{ first: 700 }, { first: 9000, last: 9015 }]);
    const helper = ["--import", "tsx", "test/helpers/faulty-capture.ts", src, dest, mapPath, faults];
    const child = spawn(process.execPath, [...helper, "2"], { stdio: "ignore" });
    const exited = new Promise((resolve) => child.on("exit", resolve));
    // Kill once the saved map shows real progress, well before the end.
    const progressed = await untilReady(child, () => {
      try {
        return decodeMapfile(readFileSync(mapPath, "utf8")).blocks.filter((b) => b.status === "+").reduce((n, b) => n + b.size, 0) >= 1 << 20;
      } catch {
        return false; // not written yet
      }
    });
    child.kill("SIGKILL");
    await exited;
    assert.ok(progressed, "the run made progress before the kill");
    const saved = decodeMapfile(readFileSync(mapPath, "utf8"));
    assert.ok(saved.blocks.some((b) => b.status !== "+"), "killed before the end");
    // The map never claims more than DEST holds.
    const partial = readFileSync(dest);
    for (const b of saved.blocks.filter((x) => x.status === "+")) {
      assert.ok(partial.subarray(b.pos, b.pos + b.size).equals(data.subarray(b.pos, b.pos + b.size)), `rescued block at ${b.pos}`);
    }
    const resumed = await run(process.execPath, helper);
    const r = JSON.parse(resumed.stdout);
    assert.equal(r.resumed, true);
    assert.equal(r.complete, true);
    assert.ok(readFileSync(dest).equals(zeroed(data, [700, ...range(9000, 9015)])));
    assert.equal(r.hashes.sha256, await sha256sum(dest));
  });
});

describe("capture copied inside the kernel (copy_file_range)", () => {
  const mapBlocks = (path: string) => decodeMapfile(readFileSync(path, "utf8")).blocks.map((b) => `${b.pos} ${b.size} ${b.status}`);

  test("a healthy file into a file: copied in the kernel, DEST equals SOURCE (cmp), ddrescuelog finds the map done", { skip: needs("ddrescuelog") }, async () => {
    const dir = tempDir();
    const src = join(dir, "src.img");
    await sh(`head -c ${(9 << 20) + 1536} /dev/urandom > ${src}`);
    const source = new FaultyCopySource(await openSource(src), []);
    const dest = join(dir, "out.img");
    const mapPath = join(dir, "out.map");
    const r = await capture({ source, dest, mapPath });
    await source.close();
    assert.equal(r.complete, true);
    assert.equal(source.copied, 2, "the first block went through copy_file_range, then the rest in one large copy");
    assert.equal(source.log.length, 2, "and none was read as well");
    await sh(`cmp ${src} ${dest}`);
    await sh(`ddrescuelog -D ${mapPath}`); // exit 0: everything rescued
    assert.deepEqual(mapBlocks(mapPath), [`0 ${(9 << 20) + 1536} +`]);
  });

  test("bad sectors: the same map and bytes as when every block is read, no sector read more than twice; ddrescuelog lists them", {
    skip: needs("ddrescuelog"),
  }, async () => {
    const dir = tempDir();
    const rand = seededRandom(1511);
    for (let trial = 0; trial < 12; trial++) {
      const sectors = 2048 + rand(14_000);
      const data = pattern(sectors * SECTOR, trial + 40);
      const src = join(dir, `t${trial}.src`);
      writeFileSync(src, data);
      const faults: FaultRange[] = [];
      for (let k = 1 + rand(5); k > 0; k--) {
        const first = rand(sectors);
        const length = [1, 1, 8, 2 + rand(200), 1000 + rand(2000)][rand(5)];
        faults.push({ first, last: Math.min(sectors - 1, first + length - 1) });
      }
      const bad = [...new Set(faults.flatMap((f) => range(f.first, f.last as number)))].sort((a, b) => a - b);
      const blockSize = [64 << 10, 1 << 20, 4 << 20][rand(3)];
      const what = `trial ${trial}: ${sectors} sectors, block ${blockSize}, bad ${JSON.stringify(faults)}`;
      const runs = [];
      for (const kernel of [true, false]) {
        const inner = await openSource(src);
        const source = kernel ? new FaultyCopySource(inner, faults) : new FaultySource(inner, faults);
        const dest = join(dir, `t${trial}-${kernel}.img`);
        const mapPath = join(dir, `t${trial}-${kernel}.map`);
        const result = await capture({ source, dest, mapPath, blockSize });
        await source.close();
        if (source instanceof FaultyCopySource) assert.ok(source.copies > 0, `${what}: no block was copied in the kernel`);
        assert.ok(Math.max(0, ...readsPerSector(source.log).values()) <= 2, `${what}: a sector read more than twice`);
        assert.equal(result.complete, true, what);
        runs.push({ image: readFileSync(dest), map: mapBlocks(mapPath), listed: (await sh(`ddrescuelog -l- -b512 ${mapPath}`)).trim() });
      }
      const [kernel, reads] = runs;
      assert.ok(kernel.image.equals(zeroed(data, bad)), `${what}: the image`);
      assert.ok(kernel.image.equals(reads.image), `${what}: the same image both ways`);
      assert.deepEqual(kernel.map, reads.map, `${what}: the same map both ways`);
      assert.equal(kernel.listed, bad.join("\n"), `${what}: ddrescuelog's bad sectors`);
    }
  });

  test("--sparse sees every byte: nothing goes through the kernel copy", async () => {
    const dir = tempDir();
    const src = join(dir, "src.img");
    const data = pattern(3 << 20, 9);
    data.fill(0, 1 << 20, 2 << 20);
    writeFileSync(src, data);
    const source = new FaultyCopySource(await openSource(src), []);
    const dest = join(dir, "out.img");
    await capture({ source, dest, sparse: true });
    await source.close();
    assert.equal(source.copies, 0);
    assert.ok(readFileSync(dest).equals(data));
  });

  test("--hash with the kernel copy: what was copied is hashed from DEST, and the digests equal sha256sum and md5sum of the image, bad sectors and all", async () => {
    const dir = tempDir();
    const src = join(dir, "src.img");
    const data = pattern(11 << 20, 10);
    writeFileSync(src, data);
    const cases: Array<{ faults: FaultRange[]; blockSize?: number }> = [
      { faults: [] },
      { faults: [{ first: 5000 }, { first: 9000, last: 9100 }] },
      { faults: [{ first: 100 }], blockSize: 64 << 10 },
    ];
    for (const { faults, blockSize } of cases) {
      const source = new FaultyCopySource(await openSource(src), faults);
      const dest = join(dir, "out.img");
      rmSync(dest, { force: true });
      const r = await capture({ source, dest, hashes: ["sha256", "md5"], blockSize });
      await source.close();
      const what = JSON.stringify(faults);
      assert.ok(source.copied > 0, `${what}: copied in the kernel`);
      const bad = faults.flatMap((f) => range(f.first, f.last ?? f.first));
      assert.ok(readFileSync(dest).equals(zeroed(data, bad)), `${what}: the image`);
      assert.equal(r.hashes.sha256, await sha256sum(dest), `${what}: sha256`);
      assert.equal(r.hashes.md5, (await sh(`md5sum ${dest}`)).split(" ")[0], `${what}: md5`);
    }
  });

  test("SOURCE on another file system (tmpfs): copy_file_range refuses (EXDEV) once, the blocks are read instead", {
    skip: existsSync("/dev/shm") ? false : "no /dev/shm",
  }, async () => {
    const dir = tempDir();
    const src = join("/dev/shm", `platter-capfast-${process.pid}.img`);
    writeFileSync(src, pattern(5 << 20, 11));
    try {
      const source = new FaultyCopySource(await openSource(src), []);
      const dest = join(dir, "out.img");
      const r = await capture({ source, dest, mapPath: join(dir, "out.map") });
      await source.close();
      assert.equal(r.complete, true);
      assert.equal(source.copied, 0);
      assert.ok(source.copies <= 4, `asked ${source.copies} times after the first refusal (at most the reads in flight)`);
      await sh(`cmp ${src} ${dest}`);
    } finally {
      await sh(`rm -f ${src}`);
    }
  });
});
