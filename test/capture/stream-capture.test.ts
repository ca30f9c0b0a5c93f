/**
 * capture from streams (pipes, FIFOs, standard input, character devices):
 * copied in one pass to their end, as cat copies them, and checked with the
 * real tools: cmp, sha256sum, ddrescuelog.
 */
import assert from "node:assert/strict";
import { constants, existsSync, readFileSync } from "node:fs";
import { open } from "node:fs/promises";
import { join } from "node:path";
import { describe, test } from "node:test";
import { capture } from "../../src/capture/capture.js";
import { decodeMapfile } from "../../src/capture/mapfile.js";
import { DeviceError } from "../../src/errors.js";
import type { SequentialSource } from "../../src/io/stream-source.js";
import { blockedIn, spawnPlatter, WAITS_ON_PIPE } from "../helpers/blocked.js";
import { pattern } from "../helpers/data.js";
import { needs } from "../helpers/env.js";
import { CLI, sh } from "../helpers/run.js";
import { tempDir } from "../helpers/tmp.js";

const sha256 = async (path: string) => (await sh(`sha256sum < ${path}`)).split(" ")[0];

/** A stream that gives `data` in reads of `chunk` bytes, then fails with EIO where `failAt` says. */
class FailingStream implements SequentialSource {
  readonly name = "failing stream";
  private pos = 0;
  constructor(
    private readonly data: Buffer,
    private readonly chunk: number,
    private readonly failAt: number,
  ) {}
  async readOnce(into: Buffer, length = into.length): Promise<number> {
    if (this.pos >= this.failAt) throw new DeviceError(`${this.name}: read at offset ${this.pos}: input/output error`, "EIO");
    const n = Math.min(length, this.chunk, this.failAt - this.pos);
    this.data.copy(into, 0, this.pos, this.pos + n);
    this.pos += n;
    return n;
  }
  async close(): Promise<void> {}
}

describe("capture from a stream", { skip: needs("ddrescuelog") }, () => {
  test("stdin, a FIFO, a process substitution: the image equals the stream (cmp), --hash equals sha256sum, the map is finished for ddrescuelog", async () => {
    const dir = tempDir();
    const src = join(dir, "src.img");
    // Not a multiple of the block size: the last block is short.
    await sh(`head -c ${(5 << 20) + 1234} /dev/urandom > ${src} && mkfifo ${dir}/fifo`);
    const expected = await sha256(src);
    const cases: Array<[string, string]> = [
      ["stdin", `cat ${src} | node ${CLI} capture - ${dir}/a.img --map ${dir}/a.map --hash sha256 -q`],
      ["fifo", `cat ${src} > ${dir}/fifo & node ${CLI} capture ${dir}/fifo ${dir}/b.img --map ${dir}/b.map --hash sha256 -q`],
      ["substitution", `node ${CLI} capture <(cat ${src}) ${dir}/c.img --map ${dir}/c.map --hash sha256 --block-size 64K -q`],
    ];
    for (const [what, command] of cases) {
      const letter = { stdin: "a", fifo: "b", substitution: "c" }[what];
      const out = await sh(command);
      assert.equal(out, `${expected}  ${dir}/${letter}.img\n`, what);
      await sh(`cmp ${src} ${dir}/${letter}.img`);
      await sh(`ddrescuelog -D ${dir}/${letter}.map`); // exit 0: finished
      const map = decodeMapfile(readFileSync(`${dir}/${letter}.map`, "utf8"));
      assert.deepEqual(map.blocks, [{ pos: 0, size: (5 << 20) + 1234, status: "+" }], what);
      assert.equal(map.currentStatus, "+", what);
    }
  });

  test("a character device with --length, and --skip / --length on a pipe: read and dropped up to --skip, cut at --length", async () => {
    const dir = tempDir();
    const r = await sh(`node ${CLI} capture /dev/zero ${dir}/zeros.img --length 3MiB --hash md5 -q`);
    assert.equal(r, `${(await sh("head -c 3M /dev/zero | md5sum")).split(" ")[0]}  ${dir}/zeros.img\n`);
    await sh(`head -c 3M /dev/zero | cmp - ${dir}/zeros.img`);
    await sh(`head -c 4000000 /dev/urandom > ${dir}/src.img`);
    await sh(`cat ${dir}/src.img | node ${CLI} capture - ${dir}/window.img --skip 1000 --length 2000000 --map ${dir}/w.map -q`);
    await sh(`cmp -i 1000:0 -n 2000000 ${dir}/src.img ${dir}/window.img && test $(stat -c %s ${dir}/window.img) = 2000000`);
    const blocks = decodeMapfile(readFileSync(`${dir}/w.map`, "utf8")).blocks;
    assert.deepEqual(blocks.filter((b) => b.status === "+"), [{ pos: 1000, size: 2000000, status: "+" }]);
    // A --skip past the end of the stream: refused as for a file, nothing left behind.
    const past = await sh(`head -c 100 /dev/zero | node ${CLI} capture - ${dir}/past.img --skip 1M 2>&1; echo "rc=$?"`);
    assert.equal(past, "platter: --skip 1048576 is past the end of standard input (100 bytes)\nrc=2\n");
    assert.equal(existsSync(`${dir}/past.img`), false);
  });

  test("Ctrl-C mid-stream: exit 130, DEST holds what was read and the map says so (ddrescuelog: valid, not finished); a stream is never resumed", async () => {
    const dir = tempDir();
    await sh(`mkfifo ${dir}/fifo`);
    const run = spawnPlatter(["capture", `${dir}/fifo`, `${dir}/out.img`, "--map", `${dir}/out.map`, "--block-size", "64K"]);
    // The test writes: 1 MiB, then nothing. Once platter waits in the next read, it has read all of it.
    const writer = await open(`${dir}/fifo`, constants.O_WRONLY);
    const data = pattern(1 << 20);
    await writer.write(data);
    await blockedIn(run.child.pid as number, WAITS_ON_PIPE);
    run.child.kill("SIGINT");
    assert.equal(await run.exited, 130, run.stderr());
    await writer.close();
    assert.match(run.stderr(), /interrupted before the end of the stream: .*out\.img is incomplete; .*out\.map says it holds the first 1048576 bytes/);
    assert.ok(readFileSync(`${dir}/out.img`).equals(data));
    const map = decodeMapfile(readFileSync(`${dir}/out.map`, "utf8"));
    assert.deepEqual(map.blocks[0], { pos: 0, size: 1 << 20, status: "+" });
    assert.equal(map.blocks[1].status, "?");
    assert.equal(map.comments.at(-1), "Interrupted by user");
    await sh(`ddrescuelog -t ${dir}/out.map`);
    assert.equal((await sh(`ddrescuelog -D ${dir}/out.map; echo $?`)).trim().split("\n").at(-1), "1", "not finished");
    const again = await sh(`echo more | node ${CLI} capture - ${dir}/out.img --map ${dir}/out.map 2>&1; echo "rc=$?"`);
    assert.equal(again, `platter: cannot resume from standard input: a stream cannot be read again from where ${dir}/out.map stopped\nrc=2\n`);
  });

  test("capture and dd on a FIFO no one writes to: Ctrl-C ends them at once, exit 130, no DEST left", async () => {
    const dir = tempDir();
    await sh(`mkfifo ${dir}/fifo`);
    for (const args of [["capture", `${dir}/fifo`, `${dir}/c.img`], ["dd", `if=${dir}/fifo`, `of=${dir}/d.img`]]) {
      const run = spawnPlatter(args);
      await blockedIn(run.child.pid as number, WAITS_ON_PIPE);
      run.child.kill("SIGINT");
      assert.equal(await run.exited, 130, `${args[0]}: ${run.stderr()}`);
    }
    assert.equal(existsSync(`${dir}/c.img`), false);
  });

  test("a read error in a stream ends the capture, saying it cannot be retried; the map keeps what came before (ddrescuelog reads it)", async () => {
    const dir = tempDir();
    const data = pattern(3 << 20);
    const failAt = (2 << 20) + 5000;
    const dest = join(dir, "out.img");
    const mapPath = join(dir, "out.map");
    await assert.rejects(capture({ source: new FailingStream(data, 100_000, failAt), dest, mapPath, hashes: ["sha256"], blockSize: 1 << 20 }), (e: unknown) => {
      assert.ok(e instanceof DeviceError && e.code === "EIO");
      assert.equal(
        e.message,
        `failing stream: read at offset ${failAt}: input/output error; failing stream is a stream, which cannot be read again: ` +
          "the error cannot be retried or skipped (2 MiB captured before it)",
      );
      return true;
    });
    const map = decodeMapfile(readFileSync(mapPath, "utf8"));
    assert.deepEqual(map.blocks[0], { pos: 0, size: failAt, status: "+" });
    assert.equal(map.comments.at(-1), "Stopped by an error");
    await sh(`ddrescuelog -t ${mapPath}`);
    assert.ok(readFileSync(dest).equals(data.subarray(0, failAt)));
    // Without a map, nothing says what the partial DEST holds: it is removed.
    await assert.rejects(capture({ source: new FailingStream(data, 100_000, failAt), dest: join(dir, "nomap.img") }), DeviceError);
    assert.equal(existsSync(join(dir, "nomap.img")), false);
  });
});
