/**
 * Device nodes, FIFOs and sockets: `ls -l` shows c/b/p/s and a device's
 * "major, minor" where GNU ls puts them, `ls --json` names the type and
 * gives `rdev`; `extract` makes FIFOs, devices as root (through mknod), and
 * skips sockets, and what it cannot make, with one warning naming the file.
 */
import assert from "node:assert/strict";
import { lstatSync } from "node:fs";
import { join } from "node:path";
import { Writable } from "node:stream";
import { before, describe, test } from "node:test";
import { printListing, type LsJsonEntry, type LsOptions } from "../../src/cli/ls.js";
import { StdoutWriter } from "../../src/cli/output.js";
import { extractTree } from "../../src/fs/extract/index.js";
import { resolvePath } from "../../src/fs/path.js";
import type { FileSystem, FsNode } from "../../src/fs/types.js";
import { isRoot, needs } from "../helpers/env.js";
import { FakeFs, type FakeSpec } from "../helpers/fake-fs.js";
import { fixture } from "../helpers/fixtures.js";
import { rawTree } from "../helpers/raw-tree.js";
import { platter, run, sh } from "../helpers/run.js";
import { tempDir } from "../helpers/tmp.js";

function devices(): FakeSpec {
  return {
    children: [
      ["null", { type: "char", mode: 0o666, rdev: [1, 3] }],
      ["wide", { type: "char", mode: 0o620, gid: 5, rdev: [136, 1234] }],
      ["disk", { type: "block", mode: 0o660, gid: 6, rdev: [259, 7] }],
      ["pipe", { type: "fifo", mode: 0o600 }],
      ["five", { content: "12345" }],
      ["sock", { type: "socket", mode: 0o755 }],
    ],
  };
}

async function listed(fs: FileSystem<FsNode>, path: string, opts: LsOptions): Promise<string> {
  const chunks: Buffer[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _encoding, done) {
      chunks.push(chunk);
      done();
    },
  });
  await printListing(fs, path, opts, new StdoutWriter(sink));
  return Buffer.concat(chunks).toString("utf8");
}

/** name -> [mode string, the size column as printed (a device's "major, minor" with its padding)], from `platter ls -l`. */
function ourColumns(text: string): Record<string, [string, string]> {
  const out: Record<string, [string, string]> = {};
  for (const line of text.split("\n").filter((l) => l !== "")) {
    const m = /^(\S+) +\d+ +\d+ +\d+  (.*)  \d{4}-\d\d-\d\d \d\d:\d\d  (\S+)$/.exec(line);
    assert.ok(m, line);
    out[m[3]] = [m[1], m[2]];
  }
  return out;
}

/** The same from GNU `ls -ln --time-style=+%s` (ids here are one digit, so fields are one space apart). */
async function gnuColumns(dir: string): Promise<Record<string, [string, string]>> {
  const r = await run("ls", ["-ln", "--time-style=+%s", dir], { env: { LC_ALL: "C" } });
  assert.equal(r.code, 0, r.stderr);
  const out: Record<string, [string, string]> = {};
  for (const line of r.stdout.split("\n").filter((l) => l !== "" && !l.startsWith("total"))) {
    const m = /^(\S+) \d+ \d+ \d+ (.*) \d+ (\S+)$/.exec(line);
    assert.ok(m, line);
    out[m[3]] = [m[1], m[2]];
  }
  return out;
}

describe("devices, FIFOs and sockets (FileSystem double)", () => {
  test("ls -l: c/b/p/s, and a device's major and minor each right-aligned in its own column where the size goes, as GNU ls", async () => {
    const long = await listed(new FakeFs(devices()), "/", { long: true });
    assert.equal(
      long,
      [
        "brw-rw----  1  0  6  259,    7  2023-11-14 22:13  disk",
        "-rw-r--r--  1  0  0          5  2023-11-14 22:13  five",
        "crw-rw-rw-  1  0  0    1,    3  2023-11-14 22:13  null",
        "prw-------  1  0  0          0  2023-11-14 22:13  pipe",
        "srwxr-xr-x  1  0  0          0  2023-11-14 22:13  sock",
        "crw--w----  1  0  5  136, 1234  2023-11-14 22:13  wide",
        "",
      ].join("\n"),
    );
  });

  test("ls --json: the type by name, rdev only for devices, uid/gid/nlink as -l shows them", async () => {
    const entries = JSON.parse(await listed(new FakeFs(devices()), "/", { json: true })) as LsJsonEntry[];
    assert.deepEqual(
      entries.map((e) => [e.name, e.type, e.rdev ?? null, e.uid, e.gid, e.nlink]),
      [
        ["disk", "block", [259, 7], 0, 6, 1],
        ["five", "file", null, 0, 0, 1],
        ["null", "char", [1, 3], 0, 0, 1],
        ["pipe", "fifo", null, 0, 0, 1],
        ["sock", "socket", null, 0, 0, 1],
        ["wide", "char", [136, 1234], 0, 5, 1],
      ],
    );
  });

  test("extract makes the FIFO, the devices as root (ls -l of them is what platter ls -l shows), skips the socket with one warning", async () => {
    const fs = new FakeFs(devices());
    const out = join(tempDir(), "out");
    const warnings: string[] = [];
    const summary = await extractTree(fs, await resolvePath(fs, "/"), out, { onWarning: (m) => warnings.push(m) });
    const sock = "/sock: socket not extracted: a socket is made by the program that listens on it";
    const pipe = lstatSync(join(out, "pipe"));
    assert.ok(pipe.isFIFO());
    assert.equal(pipe.mode & 0o7777, 0o600);
    assert.equal(pipe.mtimeMs, 1_700_000_000_000);
    if (!isRoot) {
      assert.equal(summary.specials, 1);
      assert.ok(warnings.includes(sock));
      assert.equal(warnings.length, 4, "one warning per device, one for the socket");
      return;
    }
    assert.deepEqual(warnings, [sock]);
    assert.deepEqual([summary.specials, summary.skipped], [4, 1]);
    const ours = ourColumns(await listed(fs, "/", { long: true }));
    delete ours.sock; // not made
    assert.deepEqual(await gnuColumns(out), ours);
  });

  test("without mknod(1) (or without a device number), each device and FIFO is skipped with one warning naming it", async () => {
    const fs = new FakeFs({ children: [["pipe", { type: "fifo" }], ["nodev", { type: "char" }], ["null", { type: "char", rdev: [1, 3] }]] });
    const original = process.env.PATH;
    process.env.PATH = "/nonexistent";
    const warnings: string[] = [];
    try {
      const summary = await extractTree(fs, await resolvePath(fs, "/"), join(tempDir(), "out"), { onWarning: (m) => warnings.push(m) });
      assert.deepEqual([summary.specials, summary.skipped], [0, 3]);
    } finally {
      process.env.PATH = original;
    }
    assert.deepEqual(warnings, [
      "/nodev: character device not extracted: the image does not give its device number",
      "/null: character device not extracted: no mknod command (coreutils) to make it",
      "/pipe: fifo not extracted: no mknod command (coreutils) to make it",
    ]);
  });
});

describe("devices and FIFOs in a squashfs made by mksquashfs (pseudo files)", { skip: needs("mksquashfs", "unsquashfs") }, () => {
  let img = "";
  before(async () => {
    img = join(await fixture("make-listing-images.sh", "listing"), "names.sqfs");
  });

  test("ls -l /dev: types, modes and the major, minor columns equal GNU ls -ln of what unsquashfs made (as root)", { skip: needs("root") }, async () => {
    const theirs = join(tempDir(), "unsquashfs");
    await sh(`unsquashfs -q -n -d ${theirs} ${img} >/dev/null`);
    const r = await platter(["ls", img, "/dev", "-l"]);
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(ourColumns(r.stdout), await gnuColumns(join(theirs, "dev")));
  });

  test("ls --json /dev gives each type and the devices' rdev", async () => {
    const r = await platter(["ls", img, "/dev", "--json"]);
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(
      (JSON.parse(r.stdout) as LsJsonEntry[]).map((e) => [e.name, e.type, e.rdev ?? null]),
      [
        ["disk", "block", [259, 7]],
        ["five", "file", null],
        ["null", "char", [1, 3]],
        ["pipe", "fifo", null],
        ["wide", "char", [136, 200]],
      ],
    );
  });

  test("extract as root makes the same devices and FIFO as unsquashfs", { skip: needs("root") }, async () => {
    const tmp = tempDir();
    const r = await platter(["extract", img, "/dev", "-o", join(tmp, "platter")]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stderr, "");
    assert.match(r.stdout, /^extracted 1 file, 0 folders, 0 symlinks, 4 fifos and devices \(5 B\) into /);
    await sh(`unsquashfs -q -n -d ${join(tmp, "unsquashfs")} ${img} >/dev/null`);
    assert.deepEqual(rawTree(join(tmp, "platter")), rawTree(join(tmp, "unsquashfs", "dev")));
  });
});
