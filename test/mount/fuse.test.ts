/**
 * platter mount --fuse against the real tools: files served from a zstd and a
 * qcow2 copy of an MBR disk equal debugfs rdump's (ext4) and mcopy's (FAT)
 * extraction of the raw image, stat data equals the kernel's own ext4 driver
 * on a loop mount, --raw partition files equal the raw bytes and mount -o loop.
 */
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { mkdirSync, readdirSync, readFileSync, realpathSync, statSync } from "node:fs";
import { join } from "node:path";
import { describe, test } from "node:test";
import { needs, unavailable } from "../helpers/env.js";
import { fixture } from "../helpers/fixtures.js";
import { CLI, platter, run, sh } from "../helpers/run.js";
import { tempDir } from "../helpers/tmp.js";

const SECTOR = 512;
const P1 = { start: 2048, size: 16384 };
const P2 = { start: 18432, size: 75776 };

function existsFuseBinding(): boolean {
  try {
    statSync(new URL("../../node_modules/fuse-native/package.json", import.meta.url));
    return true;
  } catch {
    return false;
  }
}

/** The optional binding: npm install puts it there (and on CI it must be). */
const noBinding = existsFuseBinding() ? false : unavailable("the optional npm package fuse-native is not installed", "run npm install (it is in optionalDependencies)");

function isMounted(mountPoint: string): boolean {
  const path = realpathSync(mountPoint);
  return readFileSync("/proc/mounts", "utf8")
    .split("\n")
    .some((line) => line.split(" ")[1] === path);
}

/** Mount in the background as `platter mount` does; returns the server's pid. */
async function mount(args: string[], env?: Record<string, string>): Promise<{ pid: number; stderr: string }> {
  const r = await platter(["mount", ...args], { env });
  assert.equal(r.code, 0, r.stderr);
  const pid = /through FUSE \(pid (\d+)\)/.exec(r.stdout);
  assert.ok(pid, r.stdout);
  return { pid: Number(pid[1]), stderr: r.stderr };
}

async function umount(mountPoint: string): Promise<void> {
  const r = await platter(["umount", mountPoint]);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /^unmounted .* \(platter:\d+, FUSE\)\n$/);
  assert.equal(isMounted(mountPoint), false, "the mount is still in /proc/mounts");
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** sha256sum of every regular file under `root`, by relative path, sorted: what two extractions must share. */
function sums(root: string): Promise<string> {
  return sh(`cd '${root}' && find . -type f -print0 | LC_ALL=C sort -z | xargs -0 -r sha256sum`);
}

/**
 * What stat says of every entry (not atime/ctime: the readers give mtime only).
 * Names as bytes (QUOTING_STYLE=literal): read as UTF-8, a name that is not
 * UTF-8 then shows U+FFFD for each bad byte, as the FUSE mount serves it.
 */
function stats(root: string): Promise<string> {
  return sh(`cd '${root}' && find . -print0 | LC_ALL=C sort -z | QUOTING_STYLE=literal xargs -0 stat -c '%n|%F|%a|%u|%g|%s|%h|%i|%t:%T|%Y|%N'`);
}

describe("platter mount --fuse", { skip: needs("fuse", "debugfs", "mcopy", "zstd", "qemu-img", "sfdisk", "mkfs.ext4", "mkfs.vfat", "openssl") || noBinding }, async () => {
  const img = await fixture("make-fuse-disk.sh", "fuse-disk.img");
  const zst = `${img}.zst`;
  const qcow2 = img.replace(/\.img$/, ".qcow2");
  const dir = tempDir();
  const mnt = join(dir, "mnt");
  mkdirSync(mnt);

  // The real tools' extraction of the raw image: debugfs rdump for ext4, mcopy for FAT.
  const p2raw = join(dir, "p2.raw");
  const extRef = join(dir, "ext-ref");
  const fatRef = join(dir, "fat-ref");
  await sh(`dd if=${img} of=${p2raw} bs=${SECTOR} skip=${P2.start} count=${P2.size} status=none`);
  await sh(`mkdir ${extRef} && debugfs -R 'rdump "/data" "/links" "/deep" "/special" ${extRef}' ${p2raw} 2>/dev/null`);
  await sh(`mkdir ${fatRef} && MTOOLS_SKIP_CHECK=1 mcopy -s -m -i ${img}@@${P1.start * SECTOR} ::/ ${fatRef}/`);
  const extSums = await sums(extRef);
  const fatSums = await sums(fatRef);
  assert.match(extSums, /data\/file7\.bin/);

  test("a zstd-compressed disk: mount picks FUSE by itself and says so; the ext4 files equal debugfs rdump's", async () => {
    const { stderr } = await mount([zst, mnt, "--part", "2"]);
    try {
      assert.match(stderr, /is a zstd image, and a loop device mounts raw bytes only: mounting through FUSE instead \(read-only\)/);
      assert.equal(await sums(mnt), extSums);
      assert.equal(readFileSync(join(mnt, "deep/a/b/c/leaf.txt"), "utf8"), "deep\n");
      // Not UTF-8 in the image (bytes ff fe): listed and opened with U+FFFD for each bad byte.
      assert.ok(readdirSync(join(mnt, "links")).includes("bad\ufffd\ufffd.txt"));
      assert.equal(readFileSync(join(mnt, "links", "bad\ufffd\ufffd.txt"), "utf8"), "raw name\n");
      // Read-only: the kernel refuses writes before platter sees them.
      await assert.rejects(sh(`touch ${mnt}/new`), /Read-only file system/);
      const df = await sh(`stat -f -c '%b %S' ${mnt}`);
      assert.equal(df, `${(P2.size * SECTOR) / 4096} 4096\n`);
    } finally {
      await umount(mnt);
    }
  });

  test("stat data (types, modes, owners, sizes, links, inode numbers, devices, mtimes, symlinks) equals the kernel's ext4 on a loop mount", { skip: needs("loop") }, async () => {
    const kernelMnt = join(dir, "kernel");
    mkdirSync(kernelMnt, { recursive: true });
    await sh(`mount -o loop,ro,offset=${P2.start * SECTOR},sizelimit=${P2.size * SECTOR} -t ext4 ${img} ${kernelMnt}`);
    let kernel: string;
    try {
      kernel = await stats(kernelMnt);
    } finally {
      await sh(`umount ${kernelMnt}`);
    }
    await mount([zst, mnt, "--part", "2", "--fuse"]);
    try {
      const ours = await stats(mnt);
      assert.equal(ours, kernel);
      if (needs("root") === false) assert.match(ours, /\.\/special\/tty\|character special file\|644\|0\|0\|0\|1\|\d+\|4:40\|/);
      // Hard links: one inode number, two links.
      assert.equal(statSync(join(mnt, "links/original")).ino, statSync(join(mnt, "links/hardlink")).ino);
    } finally {
      await umount(mnt);
    }
  });

  test("a qcow2 copy (qemu-img convert): ext4 files equal debugfs rdump's, FAT files equal mcopy's", async () => {
    await mount([qcow2, mnt, "--part", "2", "--fuse"]);
    try {
      assert.equal(await sums(mnt), extSums);
    } finally {
      await umount(mnt);
    }
    await mount([qcow2, mnt, "--part", "1", "--fuse"]);
    try {
      assert.equal(await sums(mnt), fatSums);
      assert.match(await sh(`mount | grep ' ${realpathSync(mnt)} '`), /type fuse\.platter \(ro,/);
    } finally {
      await umount(mnt);
    }
  });

  test("--raw on a qcow2: disk and p1, p2 equal the raw bytes (cmp), and mount -o loop of p2 serves the files", async () => {
    await mount([qcow2, mnt, "--raw"]);
    try {
      assert.deepEqual(readdirSync(mnt), ["disk", "p1", "p2"]);
      await sh(`cmp ${img} ${mnt}/disk`);
      await sh(`cmp ${p2raw} ${mnt}/p2`);
      await sh(`dd if=${img} bs=${SECTOR} skip=${P1.start} count=${P1.size} status=none | cmp - ${mnt}/p1`);
      if (needs("loop") === false) {
        const loopMnt = join(dir, "loop");
        mkdirSync(loopMnt, { recursive: true });
        await sh(`mount -o loop,ro -t ext4 ${mnt}/p2 ${loopMnt}`);
        try {
          assert.equal(await sums(loopMnt), extSums);
        } finally {
          await sh(`umount ${loopMnt}`);
        }
        assert.equal(isMounted(loopMnt), false);
      }
    } finally {
      await umount(mnt);
    }
  });

  test("8 processes reading 8 different files at once all get the right bytes", async () => {
    await mount([zst, mnt, "--part", "2", "--fuse"]);
    try {
      const files = Array.from({ length: 8 }, (_, i) => `data/file${i}.bin`);
      const results = await Promise.all(files.map((f) => run("sha256sum", [f], { cwd: mnt })));
      const expected = await sh(`cd ${extRef} && sha256sum ${files.join(" ")}`);
      assert.equal(results.map((r) => r.stdout).join(""), expected);
    } finally {
      await umount(mnt);
    }
  });

  test("SIGTERM to the server while a reader has a file open: the reader gets an error, the mount point is released", async () => {
    const { pid } = await mount([zst, mnt, "--part", "2", "--fuse"]);
    const reader = spawn(process.execPath, [
      "-e",
      `const fs = require("node:fs");
       const fd = fs.openSync(${JSON.stringify(join(mnt, "data/file5.bin"))}, "r");
       const b = Buffer.alloc(4096);
       fs.readSync(fd, b, 0, b.length, 0);
       process.stdout.write("reading\\n");
       process.stdin.once("data", () => {
         try { fs.readSync(fd, b, 0, b.length, 3 * 1048576); console.log("read ok"); }
         catch (e) { console.log("error " + e.code); }
         process.exit(0);
       });`,
    ]);
    let out = "";
    reader.stdout.on("data", (d: Buffer) => (out += d.toString()));
    const exited = new Promise((r) => reader.on("exit", r));
    try {
      for (let i = 0; i < 2400 && !out.includes("reading") && reader.exitCode === null; i++) await new Promise((r) => setTimeout(r, 25));
      assert.match(out, /reading/);
      process.kill(pid, "SIGTERM");
      for (let i = 0; i < 2400 && alive(pid); i++) await new Promise((r) => setTimeout(r, 25));
      assert.equal(alive(pid), false, "the server is still running after SIGTERM");
      assert.equal(isMounted(mnt), false, "SIGTERM left the mount in /proc/mounts");
      assert.deepEqual(readdirSync(mnt), []);
      reader.stdin.write("go\n");
      await exited;
      assert.match(out, /error E(NOTCONN|IO|NODEV)/);
    } finally {
      reader.kill();
      if (isMounted(mnt)) await umount(mnt);
    }
  });

  test("refusals: an image inside the mount point, --rw, a busy mount point; nothing is left mounted", async () => {
    const own = join(dir, "own");
    mkdirSync(own, { recursive: true });
    await sh(`cp ${zst} ${own}/disk.img.zst`);
    const r = await platter(["mount", join(own, "disk.img.zst"), own, "--fuse", "--part", "2"]);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /disk\.img\.zst is inside the mount point .*own: the mount would hide it from platter itself/);
    assert.equal(isMounted(own), false);
    const rw = await platter(["mount", zst, mnt, "--fuse", "--rw"]);
    assert.equal(rw.code, 2);
    assert.match(rw.stderr, /FUSE mounts are read-only/);
    await mount([zst, mnt, "--part", "2", "--fuse"]);
    try {
      const again = await platter(["mount", zst, mnt, "--part", "2", "--fuse"]);
      assert.equal(again.code, 2);
      assert.match(again.stderr, /is already a mount point/);
    } finally {
      await umount(mnt);
    }
  });

  test("unprivileged (setpriv to nobody): the same mount works where /dev/fuse is open to others", { skip: needs("setpriv", "root") }, async (t) => {
    if ((statSync("/dev/fuse").mode & 0o006) !== 0o006) {
      t.diagnostic(`this machine does not allow unprivileged FUSE: /dev/fuse is mode ${(statSync("/dev/fuse").mode & 0o777).toString(8)}, not open to others`);
      return;
    }
    const home = join(dir, "nobody");
    mkdirSync(join(home, "mnt"), { recursive: true });
    await sh(`cp ${zst} ${home}/disk.img.zst && chown -R 65534:65534 ${home} && chmod 755 ${dir}`);
    const asNobody = (args: string[]) =>
      run("setpriv", ["--reuid=65534", "--regid=65534", "--clear-groups", process.execPath, CLI, ...args], { env: { HOME: home, XDG_CACHE_HOME: home } });
    const m = await asNobody(["mount", join(home, "disk.img.zst"), join(home, "mnt"), "--part", "2"]);
    if (m.code !== 0 && /EACCES|permission denied|not usable/i.test(m.stderr)) {
      t.diagnostic(`nobody cannot reach the worktree or FUSE here: ${m.stderr.trim()}`);
      return;
    }
    assert.equal(m.code, 0, m.stderr);
    assert.match(m.stderr, /not root, so no loop device: mounting through FUSE instead/);
    try {
      assert.equal(await sums(join(home, "mnt")), extSums);
    } finally {
      const u = await asNobody(["umount", join(home, "mnt")]);
      assert.equal(u.code, 0, u.stderr);
    }
    assert.equal(isMounted(join(home, "mnt")), false);
  });
});

