import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { copyFileSync, existsSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, test } from "node:test";
import { capture } from "../../src/capture/capture.js";
import { decodeMapfile } from "../../src/capture/mapfile.js";
import { CountingSource } from "../../src/io/counting-source.js";
import { MemorySource } from "../../src/io/memory-source.js";
import { openSource } from "../../src/io/file-source.js";
import { isRoot, needs, unavailable } from "../helpers/env.js";
import { CLI, platter, sh, untilReady } from "../helpers/run.js";
import { tempDir } from "../helpers/tmp.js";

const EXAMPLE = new URL("../../examples/disk.img", import.meta.url).pathname;

async function sum(tool: string, path: string): Promise<string> {
  return (await sh(`${tool} ${path}`)).split(" ")[0];
}

describe("platter capture (command line)", () => {
  test("hash equals sha256sum/md5sum; --hash-file passes sha256sum -c; --json has exactly DESIGN.md's keys", async () => {
    const dir = tempDir();
    const dest = join(dir, "disk.img");
    const r = await platter(["capture", EXAMPLE, dest, "--hash", "sha256", "--hash-file", join(dir, "disk.sha256"), "--quiet"]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, `${await sum("sha256sum", EXAMPLE)}  ${dest}\n`);
    await sh(`sha256sum -c ${join(dir, "disk.sha256")}`);
    const j = await platter(["capture", EXAMPLE, join(dir, "two.img"), "--hash", "md5,sha256", "--json"]);
    assert.equal(j.code, 0, j.stderr);
    const summary = JSON.parse(j.stdout);
    assert.deepEqual(Object.keys(summary), ["source", "dest", "size", "bytesCopied", "bytesUnreadable", "badRanges", "hashes", "seconds", "complete"]);
    assert.equal(summary.size, 4 << 20);
    assert.equal(summary.bytesCopied, 4 << 20);
    assert.equal(summary.bytesUnreadable, 0);
    assert.deepEqual(summary.badRanges, []);
    assert.equal(summary.complete, true);
    assert.equal(summary.hashes.md5, await sum("md5sum", EXAMPLE));
    assert.equal(summary.hashes.sha256, await sum("sha256sum", EXAMPLE));
    await sh(`cmp ${EXAMPLE} ${join(dir, "two.img")}`);
  });

  test("a source the page cache does not hold is read around it (O_DIRECT): same bytes and hash, odd size and --skip, cache left alone", async () => {
    const dir = tempDir();
    const src = join(dir, "cold.img");
    await sh(`head -c ${(5 << 20) + 4321} /dev/urandom > ${src} && sync ${src} && dd if=${src} iflag=nocache count=0 status=none`);
    const whole = await platter(["capture", src, join(dir, "whole.img"), "--hash", "sha256", "-q"]);
    assert.equal(whole.code, 0, whole.stderr);
    // Read directly, SOURCE is still not cached (where the file system takes O_DIRECT and the kernel has cachestat).
    const probe = await openSource(src, { direct: true });
    const cached = probe.cachedBytes();
    await probe.close();
    if (probe.direct && cached !== undefined) assert.ok(cached < 1 << 20, `the capture left ${cached} bytes of SOURCE cached`);
    assert.equal(whole.stdout.split(" ")[0], await sum("sha256sum", src));
    await sh(`cmp ${src} ${join(dir, "whole.img")}`);
    const part = await platter(["capture", src, join(dir, "part.img"), "--skip", "1000", "--length", "3000000", "-q"]);
    assert.equal(part.code, 0, part.stderr);
    await sh(`cmp -n 3000000 -i 1000:0 ${src} ${join(dir, "part.img")} && test $(stat -c %s ${join(dir, "part.img")}) = 3000000`);
  });

  test("under a `ulimit -v` that forbids aligned (WebAssembly) memory, capture and hash still work, through the page cache", async (t) => {
    const probe = await sh(`ulimit -v 8000000 && ${process.execPath} -e 'try { new WebAssembly.Memory({ initial: 1, maximum: 1, shared: true }); console.log("wasm") } catch { console.log("no wasm") }'`).catch(() => "no node");
    if (probe.trim() !== "no wasm") return t.skip(unavailable(`under ulimit -v 8000000 this Node says: ${probe.trim()}`, "run CI where ulimit -v forbids Node's shared WebAssembly memory (Node 20 on Linux x86-64)"));
    const dir = tempDir();
    const src = join(dir, "src.img");
    const dest = join(dir, "dest.img");
    // Over the worker threshold, with 4 MiB blocks: every hashed block goes through the ring in several slots.
    await sh(`head -c 100M /dev/urandom > ${src} && sync ${src} && dd if=${src} iflag=nocache count=0 status=none`);
    const limited = (args: string) => sh(`ulimit -v 8000000 && ${process.execPath} ${CLI} ${args}`);
    const captured = await limited(`capture ${src} ${dest} --hash sha256 --block-size 4M -q`);
    const expected = await sum("sha256sum", src);
    assert.equal(captured.split(" ")[0], expected);
    await sh(`cmp ${src} ${dest}`);
    assert.equal((await limited(`hash ${src}`)).split(" ")[0], expected);
  });

  test("--sparse: DEST's allocated size (du) is far below its size, contents equal (cmp)", async () => {
    const dir = tempDir();
    const src = join(dir, "zeros.img");
    // Written zeros (not holes) with a little data: only --sparse can make DEST sparse.
    await sh(`dd if=/dev/zero of=${src} bs=1M count=64 status=none && head -c 1M /dev/urandom | dd of=${src} bs=1M seek=20 conv=notrunc status=none`);
    const dest = join(dir, "out.img");
    const r = await platter(["capture", src, dest, "--sparse", "--quiet"]);
    assert.equal(r.code, 0, r.stderr);
    await sh(`cmp ${src} ${dest}`);
    const kib = Number((await sh(`du -k ${dest}`)).split(/\s+/)[0]);
    assert.equal(statSync(dest).size, 64 << 20);
    assert.ok(kib <= 2048, `du says ${kib} KiB for a 64 MiB image with 1 MiB of data`);
  });

  test("DEST - streams the image to stdout (cmp); the hash line goes to stderr", async () => {
    const r = await platter(["capture", EXAMPLE, "-", "--hash", "sha256", "--quiet"]);
    assert.equal(r.code, 0, r.stderr);
    assert.ok(r.stdoutBytes.equals(readFileSync(EXAMPLE)));
    assert.match(r.stderr, new RegExp(`^${await sum("sha256sum", EXAMPLE)}  -\\n`));
  });

  test("resumes a mapfile GNU ddrescue left half-done, reading only the rest; ddrescuelog -D then says done", {
    skip: needs("ddrescue", "ddrescuelog"),
  }, async () => {
    const dir = tempDir();
    const src = join(dir, "src.img");
    await sh(`head -c 5M /dev/urandom > ${src} && cd ${dir} && ddrescue -q -s 2MiB src.img dst.img map`);
    assert.equal(statSync(join(dir, "dst.img")).size, 2 << 20);
    const r = await platter(["capture", src, join(dir, "dst.img"), "--map", join(dir, "map"), "--hash", "sha1", "--json"]);
    assert.equal(r.code, 0, r.stderr);
    const summary = JSON.parse(r.stdout);
    assert.equal(summary.hashes.sha1, await sum("sha1sum", src));
    await sh(`cmp ${src} ${join(dir, "dst.img")}`);
    await sh(`ddrescuelog -D ${join(dir, "map")}`);
    assert.match(r.stderr, /\(resumed\)/);
  });

  test("killed with SIGKILL mid-copy: platter resumes to a byte-identical image with the right hash, and so does GNU ddrescue", {
    skip: needs("ddrescue"),
  }, async () => {
    const dir = tempDir();
    const src = join(dir, "src.img");
    const dest = join(dir, "dst.img");
    const map = join(dir, "dst.map");
    await sh(`head -c 48M /dev/urandom > ${src}`);
    const args = ["capture", src, dest, "--map", map, "--max-read-rate", "16MiB", "--map-interval", "0.1", "--block-size", "256K", "-q"];
    const child = spawn(process.execPath, [CLI, ...args], { stdio: "ignore" });
    const exited = new Promise((resolve) => child.on("exit", resolve));
    let progress = 0;
    await untilReady(child, () => {
      try {
        progress = decodeMapfile(readFileSync(map, "utf8")).blocks.filter((b) => b.status === "+").reduce((n, b) => n + b.size, 0);
      } catch {
        // not saved yet
      }
      return progress >= 8 << 20;
    });
    child.kill("SIGKILL");
    await exited;
    const saved = decodeMapfile(readFileSync(map, "utf8"));
    const rescued = saved.blocks.filter((b) => b.status === "+");
    assert.ok(progress >= 8 << 20 && saved.blocks.some((b) => b.status === "?"), "killed mid-copy");
    // Whatever the saved map calls rescued is really in DEST.
    const source = readFileSync(src);
    const partial = readFileSync(dest);
    for (const b of rescued) assert.ok(partial.subarray(b.pos, b.pos + b.size).equals(source.subarray(b.pos, b.pos + b.size)));

    copyFileSync(dest, `${dest}.ddrescue`);
    copyFileSync(map, `${map}.ddrescue`);
    const r = await platter(["capture", src, dest, "--map", map, "--hash", "sha256", "--json"]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(JSON.parse(r.stdout).hashes.sha256, await sum("sha256sum", src));
    await sh(`cmp ${src} ${dest}`);
    await sh(`ddrescue -q ${src} ${dest}.ddrescue ${map}.ddrescue && cmp ${src} ${dest}.ddrescue`);
  });

  test("SIGINT/SIGTERM stop cleanly: exit 130/143, the map saved and resumable; without --map the partial DEST is removed", async () => {
    const dir = tempDir();
    const src = join(dir, "src.img");
    await sh(`head -c 32M /dev/urandom > ${src}`);
    // Signalled once DEST has its first bytes: the copy has begun, whatever the machine's load.
    const interrupt = async (args: string[], dest: string, signal: NodeJS.Signals = "SIGINT") => {
      const child = spawn(process.execPath, [CLI, ...args, "--max-read-rate", "8MiB", "--block-size", "256K"], { stdio: ["ignore", "pipe", "pipe"] });
      let stderr = "";
      child.stderr.on("data", (d) => (stderr += d));
      const code = new Promise<number | null>((resolve) => child.on("exit", resolve));
      // Interrupted once a MiB has reached DEST: the copy is under way, its signal handlers set.
      await untilReady(child, () => existsSync(dest) && statSync(dest).size >= 1 << 20);
      child.kill(signal);
      return { code: await code, stderr };
    };
    const withMap = await interrupt(["capture", src, join(dir, "a.img"), "--map", join(dir, "a.map")], join(dir, "a.img"));
    assert.equal(withMap.code, 130, withMap.stderr);
    assert.match(withMap.stderr, /interrupted: .*a\.map is saved; run the same command again to resume/);
    const saved = decodeMapfile(readFileSync(join(dir, "a.map"), "utf8"));
    assert.ok(saved.blocks.some((b) => b.status === "+") && saved.blocks.some((b) => b.status === "?"));
    assert.equal(saved.comments.at(-1), "Interrupted by user");
    const resumed = await platter(["capture", src, join(dir, "a.img"), "--map", join(dir, "a.map"), "--quiet"]);
    assert.equal(resumed.code, 0, resumed.stderr);
    await sh(`cmp ${src} ${join(dir, "a.img")}`);

    const noMap = await interrupt(["capture", src, join(dir, "b.img")], join(dir, "b.img"), "SIGTERM");
    assert.equal(noMap.code, 143);
    assert.match(noMap.stderr, /b\.img is incomplete and was removed/);
    assert.equal(existsSync(join(dir, "b.img")), false);
  });

  test("bad input: one clear line, the right exit code, no DEST left behind", async () => {
    const dir = tempDir();
    const src = join(dir, "src.img");
    writeFileSync(src, Buffer.alloc(64 << 10, 7));
    const dest = join(dir, "out.img");
    const cases: Array<[string[], number, RegExp]> = [
      [["capture", join(dir, "missing.img"), dest], 1, /^platter: .*missing\.img: no such file or directory\n$/],
      [["capture", src, join(dir, "no-such-dir", "x.img")], 1, /no-such-dir\/x\.img: no such file or directory\n$/],
      [["capture", src, dest, "--block-size", "1000"], 2, /^platter: invalid --block-size 1000/],
      [["capture", src, dest, "--block-size", "lots"], 2, /^platter: invalid --block-size 'lots'/],
      [["capture", src, dest, "--retries", "-1"], 2, /^platter: invalid --retries/],
      [["capture", src, dest, "--sector-size", "3"], 2, /^platter: invalid --sector-size 3: must be a power of two from 512 bytes to 1 MiB\n/],
      [["capture", src, dest, "--sector-size", "1000", "--block-size", "64K"], 2, /^platter: invalid --sector-size 1000/],
      [["capture", src, dest, "--hash", "crc32"], 2, /^platter: unknown hash 'crc32'/],
      [["capture", src, dest, "--skip", "1M"], 2, /^platter: --skip 1048576 is past the end/],
      [["capture", src, dest, "--length", "1M"], 2, /goes past the end/],
      [["capture", src, "-", "--json"], 2, /^platter: --json prints on stdout/],
      [["capture", src, dest, "--bogus"], 2, /unknown option '--bogus'/],
      [["capture", src, join(dir, "no-such-dir", "x.img"), "--map", join(dir, "x.map")], 1, /no such file or directory\n$/],
    ];
    for (const [args, code, message] of cases) {
      const r = await platter(args);
      assert.equal(r.code, code, `${args.join(" ")}: ${r.stderr}`);
      assert.match(r.stderr, message, args.join(" "));
      assert.equal(r.stderr.trim().split("\n")[0].startsWith("platter: "), true, r.stderr);
      assert.equal(existsSync(dest), false, `${args.join(" ")} left ${dest}`);
      assert.equal(existsSync(join(dir, "x.map")), false, `${args.join(" ")} left a mapfile`);
    }
    // A mapfile records where DEST starts: resuming it with another --skip would misplace every byte.
    const map = join(dir, "window.map");
    assert.equal((await platter(["capture", src, dest, "--map", map, "--skip", "4K", "--length", "8K", "-q"])).code, 0);
    const moved = await platter(["capture", src, dest, "--map", map, "--skip", "8K", "--length", "8K"]);
    assert.equal(moved.code, 2);
    assert.match(moved.stderr, /^platter: .*window\.map belongs to a capture with --skip 4096; resume it with the same --skip \(this run: 8192\)\n$/);
  });

  test("every output path (DEST, --map, --hash-file) is checked before a byte is copied: missing folder, a folder, SOURCE, each other", async () => {
    const dir = tempDir();
    const src = join(dir, "src.img");
    writeFileSync(src, Buffer.alloc(1 << 20, 3));
    await sh(`ln -s ${src} ${dir}/link.img`);
    const dest = join(dir, "out.img");
    const cases: Array<[string[], number, string]> = [
      [["--hash-file", `${dir}/nodir/x.sha256`], 1, `${dir}/nodir/x.sha256: no such file or directory`],
      [["--hash-file", dir], 2, `--hash-file ${dir}: is a directory`],
      [["--map", dir], 2, `--map ${dir}: is a directory`],
      [["--hash-file", src], 2, `refusing to write --hash-file ${src}: it is the source ${src}`],
      [["--map", `${dir}/link.img`], 2, `refusing to write --map ${dir}/link.img: it is the source ${src}`],
      [["--map", dest], 2, `DEST and --map are the same file (${dest})`],
      [["--map", `${dir}/m`, "--hash-file", `${dir}/m`], 2, `--map and --hash-file are the same file (${dir}/m)`],
    ];
    for (const [flags, code, message] of cases) {
      const r = await platter(["capture", src, dest, ...flags]);
      assert.equal(r.code, code, `${flags.join(" ")}: ${r.stderr}`);
      assert.equal(r.stderr, `platter: ${message}\n`);
      assert.equal(existsSync(dest) || existsSync(`${dir}/m`), false, `${flags.join(" ")}: nothing written`);
    }
    assert.ok(readFileSync(src).equals(Buffer.alloc(1 << 20, 3)));
    // The library reads nothing from SOURCE before every output checks out.
    const source = new CountingSource(new MemorySource(Buffer.alloc(1 << 20, 3)));
    await assert.rejects(capture({ source, dest, hashes: ["sha256"], hashFile: `${dir}/nodir/x` }), /no such file or directory/);
    assert.equal(source.bytesRead, 0);
  });

  test("a hash file that cannot be written at the end (/dev/full) fails the command, but the complete image stays", async () => {
    const dir = tempDir();
    const dest = join(dir, "out.img");
    const r = await platter(["capture", EXAMPLE, dest, "--hash-file", "/dev/full", "-q"]);
    assert.equal(r.code, 1);
    assert.equal(r.stderr, "platter: /dev/full: no space left on device\n");
    await sh(`cmp ${EXAMPLE} ${dest}`);
  });

  test("DEST is SOURCE under another path, or a hard link to it: refused, SOURCE untouched", async () => {
    const dir = tempDir();
    const src = join(dir, "src.img");
    writeFileSync(src, Buffer.alloc(64 << 10, 9));
    await sh(`ln ${src} ${dir}/hard.img && ln -s ${src} ${dir}/soft.img`);
    for (const dest of [src, `${dir}/../${dir.split("/").pop()}/src.img`, `${dir}/hard.img`, `${dir}/soft.img`]) {
      const r = await platter(["capture", src, dest]);
      assert.equal(r.code, 2, dest);
      assert.match(r.stderr, /^platter: refusing to write to .*: it is the source/);
    }
    assert.ok(readFileSync(src).equals(Buffer.alloc(64 << 10, 9)));
  });

  test("a corrupt mapfile is refused with its line number, before DEST is touched", async () => {
    const dir = tempDir();
    const map = join(dir, "bad.map");
    writeFileSync(map, "# junk\n0x0 ? 1\n0x0 0x200 +\n0x400 0x200 -\n");
    const dest = join(dir, "out.img");
    const r = await platter(["capture", EXAMPLE, dest, "--map", map]);
    assert.equal(r.code, 1);
    assert.equal(r.stderr, `platter: ${map}: mapfile line 4: block at 0x400 is not contiguous with the previous one (which ends at 0x00000200)\n`);
    assert.equal(existsSync(dest), false);
  });

  test("an unwritable DEST (permission denied, as an unprivileged user) is one line, exit 1", { skip: isRoot ? needs("setpriv") : false }, async () => {
    const dir = tempDir();
    await sh(`chmod 755 ${dir} && cp ${EXAMPLE} ${dir}/src.img && chmod 644 ${dir}/src.img && mkdir ${dir}/ro && chmod 555 ${dir}/ro`);
    const asUser = isRoot ? ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"] : [];
    const r = await sh(`${asUser.join(" ")} ${process.execPath} ${CLI} capture ${dir}/src.img ${dir}/ro/out.img 2>&1; echo "rc=$?"`);
    assert.equal(r, `platter: ${dir}/ro/out.img: permission denied\nrc=1\n`);
    assert.equal(existsSync(`${dir}/ro/out.img`), false);
  });
});
