import assert from "node:assert/strict";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, test } from "node:test";
import { once } from "node:events";
import { createServer } from "node:net";
import { CorruptImageError, DeviceError, UsageError } from "../../src/errors.js";
import { readFull, StreamSource } from "../../src/io/stream-source.js";
import { FaultySource } from "../helpers/faulty-source.js";
import { FileSink, StreamSink } from "../../src/io/file-sink.js";
import { PassThrough } from "node:stream";
import { openSource } from "../../src/io/file-source.js";
import { MemorySource } from "../../src/io/memory-source.js";
import { allocAligned } from "../../src/io/aligned.js";
import { SliceSource } from "../../src/io/slice-source.js";
import { needs, unavailable } from "../helpers/env.js";
import { CLI, platter, run, sh } from "../helpers/run.js";
import { tempDir } from "../helpers/tmp.js";

const EXAMPLE = new URL("../../examples/disk.img", import.meta.url).pathname;
const pattern = (n: number) => Buffer.from(Array.from({ length: n }, (_, i) => (i * 7 + (i >> 9)) & 0xff));

describe("block sources", () => {
  test("memory and slice sources are bounds-checked", async () => {
    const mem = new MemorySource(pattern(8192));
    const slice = new SliceSource(mem, 1024, 2048);
    assert.deepEqual(await slice.read(0, 16), pattern(8192).subarray(1024, 1040));
    await assert.rejects(slice.read(2040, 16), CorruptImageError);
    assert.throws(() => new SliceSource(mem, 8000, 1024), CorruptImageError);
  });

  test("file source reads a file and reports its holes like SEEK_DATA (`du` agrees it is sparse)", async () => {
    const dir = tempDir();
    const path = join(dir, "sparse.img");
    await sh(`truncate -s 64M ${path} && dd if=/dev/urandom of=${path} bs=1M count=1 seek=10 conv=notrunc status=none`);
    const src = await openSource(path);
    try {
      assert.equal(src.size, 64 << 20);
      assert.equal(src.sectorSize, 512);
      const ranges = await src.dataRanges(0, src.size);
      const covered = ranges.reduce((n, [, len]) => n + len, 0);
      assert.ok(covered >= 1 << 20 && covered <= 2 << 20, `data ranges cover ${covered} bytes: ${JSON.stringify(ranges)}`);
      assert.ok(ranges.some(([start, len]) => start <= 10 << 20 && start + len >= 11 << 20));
      assert.ok((await src.read(10 << 20, 1 << 20)).equals(readFileSync(path).subarray(10 << 20, 11 << 20)));
    } finally {
      await src.close();
    }
  });

  test("O_DIRECT file reads: aligned buffers read in place, odd offsets and a file end inside a sector read right", async (t) => {
    const dir = tempDir();
    const path = join(dir, "odd.img");
    const data = pattern((3 << 20) + 1234);
    writeFileSync(path, data);
    const src = await openSource(path, { direct: true });
    try {
      if (!src.direct) return t.skip(unavailable(`${dir}: this file system refuses O_DIRECT`, "run CI with TMPDIR on a disk file system (ext4, xfs), not tmpfs"));
      const whole = allocAligned(2 << 20);
      assert.ok((await src.read(1 << 20, 2 << 20, whole)).equals(data.subarray(1 << 20, 3 << 20)));
      for (const [offset, length] of [[777, 100_000], [data.length - 1000, 1000], [4096, 4096], [data.length - 5000, 5000]]) {
        assert.ok((await src.read(offset, length)).equals(data.subarray(offset, offset + length)), `read(${offset}, ${length})`);
        const into = Buffer.alloc(length);
        assert.equal(await src.readOnce(offset, length, into), length);
        assert.ok(into.equals(data.subarray(offset, offset + length)), `readOnce(${offset}, ${length})`);
      }
    } finally {
      await src.close();
    }
  });

  test("cachedBytes tells how much of a file the page cache holds (cachestat)", async (t) => {
    const dir = tempDir();
    const path = join(dir, "cached.img");
    writeFileSync(path, pattern(4 << 20));
    const src = await openSource(path);
    try {
      const warm = src.cachedBytes();
      if (warm === undefined) return t.skip(unavailable("this kernel has no cachestat", "run CI on Linux 6.5 or later"));
      assert.equal(warm, 4 << 20, "a file just written is in the cache");
      await sh(`sync ${path} && dd if=${path} iflag=nocache count=0 status=none`); // written back, then dropped (GNU dd)
      assert.ok((src.cachedBytes() ?? 0) < 1 << 20, `${src.cachedBytes()} bytes still cached after dropping them`);
    } finally {
      await src.close();
    }
  });

  test("stream sink: writes not waited for, long zero runs among them, leave in call order; a seek is refused", async () => {
    const out = new PassThrough({ highWaterMark: 1024 }); // a slow reader: every write waits for the one before
    const chunks: Buffer[] = [];
    out.on("data", (c: Buffer) => chunks.push(c));
    const sink = new StreamSink(out);
    const a = Buffer.alloc(100_000, 1);
    const b = Buffer.alloc(5000, 2);
    const pending = [
      sink.write(0, a),
      sink.writeZeros(100_000, 3 << 20),
      sink.write(100_000 + (3 << 20), b),
      sink.writeZeros(105_000 + (3 << 20), 10),
    ];
    await assert.rejects(sink.write(7, b), /cannot seek/);
    await Promise.all(pending);
    await sink.close();
    assert.ok(Buffer.concat(chunks).equals(Buffer.concat([a, Buffer.alloc(3 << 20), b, Buffer.alloc(10)])));
  });

  test("pipes, FIFOs, character devices and sockets are refused before any open, with the way out; no command reports them as 0 bytes", async () => {
    const dir = tempDir();
    await sh(`mkfifo ${dir}/fifo`);
    const server = createServer().listen(join(dir, "sock"));
    await once(server, "listening");
    try {
      for (const [path, kind] of [[`${dir}/fifo`, "pipe (FIFO)"], ["/dev/zero", "character device"], [`${dir}/sock`, "socket"]]) {
        // A FIFO no one writes to: an open would wait forever.
        await assert.rejects(openSource(path), (e: unknown) => {
          assert.ok(e instanceof UsageError);
          assert.equal(e.message, `${path} is a ${kind}: this needs a file or block device (random access); use \`platter capture ${path} image.img\` first`);
          return true;
        });
      }
    } finally {
      server.close();
    }
    for (const command of [["parts"], ["ls"], ["info"]]) {
      const r = await sh(`node ${CLI} ${command[0]} <(cat ${EXAMPLE}) 2>&1; echo "rc=$?"`);
      assert.match(r, /^platter: \/dev\/fd\/\d+ is a pipe \(FIFO\): this needs a file or block device \(random access\); use `platter capture \/dev\/fd\/\d+ image\.img` first\nrc=2\n$/, command[0]);
    }
  });

  test("stream source: a FIFO and a character device read to their end, one read(2) at a time", async () => {
    const dir = tempDir();
    const data = pattern(300_000);
    writeFileSync(join(dir, "data"), data);
    await sh(`mkfifo ${dir}/fifo`);
    const writer = sh(`cat ${dir}/data > ${dir}/fifo`);
    const fifo = await StreamSource.open(`${dir}/fifo`);
    const got = Buffer.alloc(data.length + 10);
    assert.equal(await readFull(fifo, got), data.length);
    assert.ok(got.subarray(0, data.length).equals(data));
    assert.equal(await fifo.readOnce(got), 0, "the end of the stream");
    await fifo.close();
    await writer;
    const zero = await StreamSource.open("/dev/zero");
    const buf = Buffer.alloc(1 << 20, 1);
    assert.equal(await zero.readOnce(buf, 4096), 4096);
    assert.ok(buf.subarray(0, 4096).equals(Buffer.alloc(4096)) && buf[4096] === 1);
    await zero.close();
  });

  test("missing file is a DeviceError naming the path", async () => {
    await assert.rejects(openSource("/nonexistent/disk.img"), (e: unknown) => {
      assert.ok(e instanceof DeviceError);
      assert.match(e.message, /\/nonexistent\/disk.img: no such file/);
      return true;
    });
  });

  test("block device: exact size and logical sector size from the kernel", { skip: needs("loop", "losetup") }, async () => {
    const dir = tempDir();
    const path = join(dir, "dev.img");
    writeFileSync(path, pattern(3 << 20));
    const loop = (await sh(`losetup -f --show --sector-size 4096 ${path}`)).trim();
    try {
      const src = await openSource(loop, { direct: true });
      assert.equal(src.size, 3 << 20);
      assert.equal(src.sectorSize, 4096);
      assert.equal(src.isBlockDevice, true);
      // A direct read at an unaligned offset still returns exactly the bytes asked for.
      assert.deepEqual(await src.read(5000, 300), pattern(3 << 20).subarray(5000, 5300));
      await src.close();
    } finally {
      await sh(`losetup -d ${loop}`);
    }
  });

  test("block device without the FFI (PLATTER_TEST_NO_FFI): size and sector size from sysfs agree with blockdev, for a 4Kn disk and its partition", {
    skip: needs("loop", "losetup", "sfdisk", "partx", "blockdev"),
  }, async () => {
    const dir = tempDir();
    const path = join(dir, "dev.img");
    writeFileSync(path, pattern(8 << 20));
    const loop = (await sh(`losetup -f --show -P --sector-size 4096 ${path}`)).trim();
    try {
      await sh(`printf 'label: dos\\nstart=256, size=1000, type=83\\n' | sfdisk -q ${loop}`);
      await run("partx", ["-a", loop]); // no udev here: make sure the partition exists
      for (const dev of [loop, `${loop}p1`]) {
        const r = await platter(["parts", dev, "--json"], { env: { PLATTER_TEST_NO_FFI: "1" } });
        assert.equal(r.code, 0, r.stderr);
        const { size, sectorSize } = JSON.parse(r.stdout);
        assert.equal(size, Number(await sh(`blockdev --getsize64 ${dev}`)), dev);
        assert.equal(sectorSize, Number(await sh(`blockdev --getss ${dev}`)), dev);
        assert.equal(sectorSize, 4096);
        const hash = await platter(["hash", dev], { env: { PLATTER_TEST_NO_FFI: "1" } });
        assert.equal(hash.stdout, await sh(`sha256sum ${dev}`), dev);
      }
      assert.equal(JSON.parse((await platter(["parts", `${loop}p1`, "--json"], { env: { PLATTER_TEST_NO_FFI: "1" } })).stdout).size, 1000 * 4096);
    } finally {
      await run("partx", ["-d", loop]);
      await sh(`losetup -d ${loop}`);
    }
  });

  test("faulty source: a read touching a bad sector fails, its neighbours read", async () => {
    const src = new FaultySource(new MemorySource(pattern(64 * 512)), [{ first: 10 }, { first: 20, last: 21, failures: 2 }]);
    await assert.rejects(src.read(0, 16 * 512), (e: unknown) => e instanceof DeviceError && e.code === "EIO");
    assert.deepEqual(await src.read(9 * 512, 512), pattern(64 * 512).subarray(9 * 512, 10 * 512));
    assert.deepEqual(await src.read(11 * 512, 512), pattern(64 * 512).subarray(11 * 512, 12 * 512));
    await assert.rejects(src.read(20 * 512, 512));
    await assert.rejects(src.read(20 * 512, 512));
    assert.equal((await src.read(20 * 512, 512)).length, 512, "weak sector reads after 2 failures");
  });

  test("file sink punches holes for zeros in sparse mode", async () => {
    const dir = tempDir();
    const path = join(dir, "out.img");
    const sink = await FileSink.open(path, { create: true, truncate: true, sparse: true });
    await sink.write(0, Buffer.alloc(1 << 20, 1));
    await sink.writeZeros(1 << 20, 8 << 20);
    await sink.write(9 << 20, Buffer.alloc(4096, 2));
    await sink.setSize(16 << 20);
    await sink.close();
    const [blocks] = (await sh(`du -k ${path}`)).split(/\s+/);
    assert.ok(Number(blocks) < 2048, `allocated ${blocks} KiB`);
    const src = await openSource(path);
    assert.equal(src.size, 16 << 20);
    assert.ok((await src.read(5 << 20, 4096)).equals(Buffer.alloc(4096)));
    await src.close();
  });
});
