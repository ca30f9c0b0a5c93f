import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { constants, readFileSync, statSync, writeFileSync } from "node:fs";
import { open } from "node:fs/promises";
import { join } from "node:path";
import { describe, test } from "node:test";
import { CONV_FLAGS, IFLAG_FLAGS, OFLAG_FLAGS, parseDdNumber, parseDdOperands } from "../../src/capture/dd-operands.js";
import { blockedIn, WAITS_ON_PIPE } from "../helpers/blocked.js";
import { needs } from "../helpers/env.js";
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
    assert.deepEqual(ops.conv, { noerror: true, sync: true, sparse: false, notrunc: false, fsync: false, fdatasync: false });
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

describe("platter dd with streams (pipes, FIFOs, character devices), against GNU dd", () => {
  test("/dev/urandom and /dev/zero: count records of bs, as GNU dd (it wrote 0 bytes before)", async () => {
    const dir = tempDir();
    for (const ops of [["if=/dev/urandom", "bs=32", "count=1"], ["if=/dev/zero", "bs=1M", "count=3"], ["if=/dev/zero", "bs=1000", "count=7", "conv=sync"]]) {
      const gnu = await run("dd", [...ops, `of=${dir}/gnu.bin`]);
      const ours = await platter(["dd", ...ops, `of=${dir}/ours.bin`]);
      assert.equal(ours.code, 0, ours.stderr);
      assert.equal(records(ours.stderr), records(gnu.stderr), ops.join(" "));
      assert.equal(statSync(`${dir}/ours.bin`).size, statSync(`${dir}/gnu.bin`).size);
      if (ops[0] === "if=/dev/zero") await sh(`cmp ${dir}/gnu.bin ${dir}/ours.bin`);
    }
  });

  test("a process substitution, stdin as a pipe, a FIFO: the same bytes and records as GNU dd (iflag=fullblock makes a pipe's records exact)", async () => {
    const dir = tempDir();
    const input = join(dir, "in.bin");
    await sh(`head -c 3000000 /dev/urandom > ${input} && mkfifo ${dir}/fifo`);
    // [command with DD for the program, the lines that must agree]
    const cases: Array<[string, RegExp]> = [
      [`DD if=<(cat ${input}) of=${dir}/x bs=1M iflag=fullblock`, /records/],
      [`cat ${input} | DD if=/dev/stdin of=${dir}/x bs=64K count=7 skip=3 iflag=fullblock`, /records/],
      [`cat ${input} > ${dir}/fifo & DD if=${dir}/fifo of=${dir}/x bs=100000 iflag=fullblock conv=sync`, /records/],
      // Without bs=, GNU dd gathers the output into 512-byte records, however the pipe splits the reads.
      [`cat ${input} | DD if=/dev/stdin of=${dir}/x`, /records out/],
    ];
    for (const [command, lines] of cases) {
      const agreeing = (stderr: string) => stderr.split("\n").filter((l) => lines.test(l)).join("\n");
      const gnu = await sh(`${command.replace("DD", "dd")} 2>&1; mv ${dir}/x ${dir}/gnu.bin`);
      const ours = await sh(`${command.replace("DD", `node ${CLI} dd`)} 2>&1; mv ${dir}/x ${dir}/ours.bin`);
      assert.equal(agreeing(ours), agreeing(gnu), command);
      assert.ok(agreeing(gnu).length > 0);
      await sh(`cmp ${dir}/gnu.bin ${dir}/ours.bin`);
    }
  });

  test("short reads from a FIFO are partial records, counted against count= and warned about, as GNU dd does", async () => {
    const dir = tempDir();
    await sh(`mkfifo ${dir}/fifo`);
    // The writer hands over 3000 bytes, waits until the reader has taken them (it waits in the next read), then 3000 more.
    const outputs: string[] = [];
    for (const command of [["dd"], [process.execPath, CLI, "dd"]]) {
      const child = spawn(command[0], [...command.slice(1), `if=${dir}/fifo`, `of=${dir}/out`, "bs=4096", "count=5"], { stdio: ["ignore", "ignore", "pipe"] });
      let stderr = "";
      child.stderr.on("data", (d) => (stderr += d));
      const exited = new Promise((resolve) => child.on("exit", resolve));
      const writer = await open(`${dir}/fifo`, constants.O_WRONLY);
      for (const byte of [1, 2]) {
        await writer.write(Buffer.alloc(3000, byte));
        assert.ok(await blockedIn(child.pid as number, WAITS_ON_PIPE), "the reader took the bytes");
      }
      await writer.close();
      await exited;
      assert.ok(readFileSync(`${dir}/out`).equals(Buffer.concat([Buffer.alloc(3000, 1), Buffer.alloc(3000, 2)])));
      outputs.push(stderr.split("\n").filter((l) => /records|partial read/.test(l)).map((l) => l.replace(/^(platter: warning: dd|dd: warning)/, "")).join("\n"));
    }
    assert.equal(outputs[1], outputs[0]);
    assert.match(outputs[0], /^: partial read \(3000 bytes\); suggest iflag=fullblock\n0\+2 records in\n0\+2 records out$/);
  });

  test("of= a FIFO is written in order; seek= on it fails as on a pipe", async () => {
    const dir = tempDir();
    await sh(`head -c 1000000 /dev/urandom > ${dir}/in.bin && mkfifo ${dir}/fifo`);
    await sh(`cat ${dir}/fifo > ${dir}/out.bin & node ${CLI} dd if=${dir}/in.bin of=${dir}/fifo bs=64K status=none; wait`);
    await sh(`cmp ${dir}/in.bin ${dir}/out.bin`);
    const r = await platter(["dd", `if=${dir}/in.bin`, `of=${dir}/fifo`, "seek=1"]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /^platter: dd: '.*fifo': cannot seek: illegal seek\n$/);
  });
});

describe("platter dd writing its own input", () => {
  test("of= the input under any path (itself, a symlink, a hard link, /proc/self/fd) is refused, the input untouched", async () => {
    const dir = tempDir();
    const input = join(dir, "in.bin");
    await sh(`head -c 100000 /dev/urandom > ${input} && ln ${input} ${dir}/hard && ln -s ${input} ${dir}/soft && cp ${input} ${dir}/orig`);
    for (const out of [input, `${dir}/hard`, `${dir}/soft`]) {
      for (const ops of [[], ["seek=1", "conv=notrunc"]]) {
        const r = await platter(["dd", `if=${input}`, `of=${out}`, "bs=4K", ...ops]);
        assert.equal(r.code, 2, `${out} ${ops.join(" ")}: ${r.stderr}`);
        assert.match(r.stderr, /^platter: dd: refusing to write to .*: it is the input /);
      }
    }
    const viaFd = await sh(`exec 7>>${input}; node ${CLI} dd if=${input} of=/proc/self/fd/7 bs=4K 2>&1; echo "rc=$?"`);
    assert.match(viaFd, /refusing to write to \/proc\/self\/fd\/7: it is the input .*\nrc=2\n$/);
    const stdout = await sh(`node ${CLI} dd if=${input} bs=4K 2>&1 >>${input}; echo "rc=$?"`);
    assert.match(stdout, /refusing to write to standard output: it is the input .*\nrc=2\n$/);
    await sh(`cmp ${input} ${dir}/orig`);
  });

  test("in place with conv=notrunc, writes at or behind the reads (or clear of them): the same bytes as GNU dd", async () => {
    const dir = tempDir();
    await sh(`head -c 100000 /dev/urandom > ${dir}/orig`);
    for (const ops of [["bs=1000", "skip=3", "conv=notrunc"], ["bs=4K", "skip=5", "seek=5", "count=3", "conv=notrunc"], ["bs=512", "skip=0", "seek=100", "count=10", "conv=notrunc"]]) {
      await sh(`cp ${dir}/orig ${dir}/gnu && cp ${dir}/orig ${dir}/ours`);
      const gnu = await run("dd", [`if=${dir}/gnu`, `of=${dir}/gnu`, ...ops]);
      const ours = await platter(["dd", `if=${dir}/ours`, `of=${dir}/ours`, ...ops]);
      assert.equal(ours.code, 0, `${ops.join(" ")}: ${ours.stderr}`);
      assert.equal(records(ours.stderr), records(gnu.stderr));
      await sh(`cmp ${dir}/gnu ${dir}/ours`);
    }
  });
});

describe("platter dd --help and conv=fsync/fdatasync", () => {
  test("--help lists every conv, iflag and oflag platter dd accepts", async () => {
    const help = (await platter(["dd", "--help"])).stdout;
    const section = (name: string, next: string) => help.slice(help.indexOf(`  ${name}=LIST`), help.indexOf(`  ${next}`));
    const listed = (text: string) => [...text.matchAll(/^ {2}(?:\w+=LIST)? +(\w+) {2,}/gm)].map((m) => m[1]).sort();
    assert.deepEqual(listed(section("conv", "status=")), [...CONV_FLAGS].sort());
    assert.deepEqual(listed(section("iflag", "oflag=")), [...IFLAG_FLAGS].sort());
    assert.deepEqual(listed(section("oflag", "\n\n")), [...OFLAG_FLAGS].sort());
    for (const flag of CONV_FLAGS) parseDdOperands(["if=a", `conv=${flag}`]);
  });

  test("conv=fsync and conv=fdatasync sync the output once at the end, as GNU dd does (strace); without them nothing is synced", { skip: needs("strace") }, async () => {
    const dir = tempDir();
    await sh(`head -c 200000 /dev/urandom > ${dir}/in.bin`);
    const syncs = async (command: string) => {
      await sh(`strace -f -qq -e trace=fsync,fdatasync -o ${dir}/trace ${command}`);
      const calls = readFileSync(`${dir}/trace`, "utf8").split("\n").map((l) => /\b(fsync|fdatasync)\(/.exec(l)?.[1]).filter(Boolean);
      return calls.join(",");
    };
    for (const conv of ["", "conv=fsync", "conv=fdatasync", "conv=fdatasync,fsync", "conv=notrunc"]) {
      const gnu = await syncs(`dd if=${dir}/in.bin of=${dir}/gnu bs=64K status=none ${conv}`);
      const ours = await syncs(`${process.execPath} ${CLI} dd if=${dir}/in.bin of=${dir}/ours bs=64K status=none ${conv}`);
      assert.equal(ours, gnu, conv || "no conv");
    }
    // A pipe cannot be synced: GNU dd fails, and so does platter dd.
    const toPipe = async (dd: string) => sh(`${dd} if=${dir}/in.bin bs=64K conv=fsync status=none 2>${dir}/err | cat >/dev/null; echo "rc=\${PIPESTATUS[0]}"`);
    assert.equal(await toPipe("dd"), "rc=1\n");
    assert.equal(await toPipe(`node ${CLI} dd`), "rc=1\n");
    assert.match(readFileSync(`${dir}/err`, "utf8"), /^platter: dd: fsync failed for 'stdout': invalid argument/);
  });
});
