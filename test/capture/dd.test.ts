import assert from "node:assert/strict";
import { readFileSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, test } from "node:test";
import { parseDdNumber, parseDdOperands } from "../../src/capture/dd-operands.js";
import { UsageError } from "../../src/errors.js";
import { CLI, platter, run, sh } from "../helpers/run.js";
import { tempDir } from "../helpers/tmp.js";

/** Records lines of dd's closing statistics. */
const records = (stderr: string) => stderr.split("\n").filter((l) => l.includes("records")).join("\n");

describe("platter dd", () => {
  test("same output file and records as GNU dd for bs/count/skip/seek/conv=sync/notrunc combinations", async () => {
    const dir = tempDir();
    const input = join(dir, "in.bin");
    await sh(`head -c 1000000 /dev/urandom > ${input}`);
    const old = Buffer.alloc(300_000, 0xaa); // an existing output, for notrunc
    const cases = [
      "bs=4096",
      "bs=64K count=3 skip=2",
      "bs=1000 seek=5",
      "bs=4K conv=sync",
      "bs=300 count=7 skip=3 seek=2",
      "bs=1M",
      "bs=2x512 count=9",
      "bs=1kB skip=999",
      "bs=512 count=100 seek=10 conv=notrunc",
      "bs=64K skip=20 conv=notrunc",
      "bs=8b count=0",
    ];
    for (const c of cases) {
      const ops = c.split(" ");
      writeFileSync(join(dir, "gnu.bin"), old);
      writeFileSync(join(dir, "ours.bin"), old);
      const gnu = await run("dd", [`if=${input}`, `of=${join(dir, "gnu.bin")}`, ...ops]);
      const ours = await platter(["dd", `if=${input}`, `of=${join(dir, "ours.bin")}`, ...ops]);
      assert.equal(ours.code, gnu.code, `${c}: ${ours.stderr}`);
      assert.ok(readFileSync(join(dir, "ours.bin")).equals(readFileSync(join(dir, "gnu.bin"))), `${c}: output differs`);
      assert.equal(records(ours.stderr), records(gnu.stderr), c);
    }
  });

  test("conv=sparse seeks over zero blocks like GNU dd: same bytes, same holes (du)", async () => {
    const dir = tempDir();
    const input = join(dir, "in.bin");
    await sh(`dd if=/dev/zero of=${input} bs=1M count=16 status=none && head -c 64K /dev/urandom | dd of=${input} bs=64K seek=100 conv=notrunc status=none`);
    await sh(`dd if=${input} of=${dir}/gnu.bin bs=64K conv=sparse status=none`);
    const r = await platter(["dd", `if=${input}`, `of=${dir}/ours.bin`, "bs=64K", "conv=sparse", "status=none"]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stderr, "");
    await sh(`cmp ${dir}/gnu.bin ${dir}/ours.bin`);
    const du = async (f: string) => Number((await sh(`du -k ${f}`)).split(/\s+/)[0]);
    assert.equal(await du(`${dir}/ours.bin`), await du(`${dir}/gnu.bin`));
    assert.ok((await du(`${dir}/ours.bin`)) <= 128);
    assert.equal(statSync(`${dir}/ours.bin`).size, 16 << 20);
  });

  test("of= omitted writes to stdout like GNU dd; seek= on a pipe fails like dd, on a redirected file it seeks; skip past the end warns", async () => {
    const dir = tempDir();
    const input = join(dir, "in.bin");
    await sh(`head -c 70000 /dev/urandom > ${input}`);
    const gnu = await run("dd", [`if=${input}`, "bs=4K", "skip=3", "status=none"]);
    const ours = await platter(["dd", `if=${input}`, "bs=4K", "skip=3", "status=none"]);
    assert.ok(ours.stdoutBytes.length > 0 && ours.stdoutBytes.equals(gnu.stdoutBytes));
    const pipe = await sh(`node ${CLI} dd if=${input} bs=4K seek=2 2>&1 | cat; echo "rc=\${PIPESTATUS[0]}"`);
    assert.match(pipe, /^platter: dd: 'standard output': cannot seek: illegal seek\nrc=1\n$/);
    await sh(`dd if=${input} bs=4K skip=3 seek=2 status=none > ${dir}/gnu.bin && node ${CLI} dd if=${input} bs=4K skip=3 seek=2 status=none > ${dir}/ours.bin`);
    await sh(`cmp ${dir}/gnu.bin ${dir}/ours.bin`);
    const past = await platter(["dd", `if=${input}`, `of=${dir}/o`, "skip=1000"]);
    assert.equal(past.code, 0);
    assert.match(past.stderr, /cannot skip to specified offset/);
    assert.match(past.stderr, /^0\+0 records in$/m);
  });

  test("operands: dd's number syntax; unknown operands and flags are usage errors (exit 2)", async () => {
    assert.equal(parseDdNumber("64K", "bs"), 65536);
    assert.equal(parseDdNumber("1MB", "bs"), 1_000_000);
    assert.equal(parseDdNumber("2b", "bs"), 1024);
    assert.equal(parseDdNumber("2x3x512", "bs"), 3072);
    assert.equal(parseDdNumber("1MiB", "bs"), 1 << 20);
    const ops = parseDdOperands(["if=/dev/sdb", "of=x", "bs=1M", "conv=noerror,sync", "status=progress", "iflag=direct", "oflag=direct"]);
    assert.deepEqual(ops.conv, { noerror: true, sync: true, sparse: false, notrunc: false });
    assert.equal(ops.iflag.direct && ops.oflag.direct, true);
    for (const [args, message] of [
      [["if=a", "bs=1Q"], /invalid number '1Q' for bs/],
      [["if=a", "conv=ucase"], /invalid conv 'ucase'/],
      [["if=a", "status=loud"], /invalid status 'loud'/],
      [["of=b"], /if= is required/],
      [["if=a", "cbs=10"], /unrecognized operand 'cbs=10'/],
      [["if=a", "-x"], /unrecognized operand '-x'/],
      [["if=a", "bs=0"], /bs must be at least 1/],
    ] as const) {
      assert.throws(() => parseDdOperands([...args]), (e: unknown) => e instanceof UsageError && message.test(e.message));
    }
    const r = await platter(["dd", "if=/dev/null", "bs=12X"]);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /^platter: dd: invalid number '12X' for bs/);
  });

  test("fuzz: random operand strings parse or fail with a UsageError, nothing else", () => {
    const pieces = ["if=", "of=", "bs=", "count=", "skip=", "seek=", "conv=", "status=", "iflag=", "x", "=", ",", "1", "0", "K", "b", "kB", "M", "noerror", "sync", "direct", "-", "Q", "99999999999999999999"];
    let seed = 3;
    const random = (n: number) => (seed = (seed * 48271) % 2147483647) % n;
    for (let i = 0; i < 5000; i++) {
      const args = Array.from({ length: 1 + random(4) }, () => Array.from({ length: 1 + random(5) }, () => pieces[random(pieces.length)]).join(""));
      try {
        parseDdOperands(args);
      } catch (err) {
        if (!(err instanceof UsageError)) throw err;
      }
    }
  });
});
