/**
 * Names that are not UTF-8, or hold control characters: `extract` writes the
 * exact bytes, `ls` shows them escaped as GNU `ls -b` does, `ls --json`
 * carries them losslessly (nameBytes/pathBytes/targetBytes, base64).
 *
 * First through a FileSystem double, whose names are exactly what a lossless
 * reader gives, then end to end on images mkfs.ext4 -d and mksquashfs made,
 * against debugfs rdump and unsquashfs.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { Writable } from "node:stream";
import { before, describe, test } from "node:test";
import { printListing, type LsJsonEntry, type LsOptions } from "../../src/cli/ls.js";
import { StdoutWriter } from "../../src/cli/output.js";
import { extractTree } from "../../src/fs/extract/index.js";
import { decodeName } from "../../src/fs/names.js";
import { resolvePath } from "../../src/fs/path.js";
import type { FileSystem, FsNode } from "../../src/fs/types.js";
import { needs } from "../helpers/env.js";
import { FakeFs, type FakeSpec } from "../helpers/fake-fs.js";
import { fixture } from "../helpers/fixtures.js";
import { bytes, rawTree } from "../helpers/raw-tree.js";
import { platter, run, sh } from "../helpers/run.js";
import { tempDir } from "../helpers/tmp.js";

/** A name given as Latin-1 (one character per byte), decoded as a lossless reader decodes it. */
const raw = (latin1: string) => decodeName(bytes(latin1));

const LONG = "\xff".repeat(255);

function oddNames(): FakeSpec {
  return {
    children: [
      [raw("bad\xff\xfe.txt"), { content: "fe\n" }],
      [raw("bad\xff\xfd.txt"), { content: "fd\n" }],
      ["a\x1b[31mred", { content: "red\n" }],
      ["new\nline", { content: "two lines\n" }],
      ["bell\x07", { content: "bell\n" }],
      ["back\\slash", { content: "backslash\n" }],
      [raw("d\xe9j\xe0"), { children: [[raw("caf\xe9"), { content: "latin-1\n" }]] }],
      [raw(LONG), { content: "long\n" }],
      ["raw-link", { target: raw("bad\xff\xfe.txt") }],
    ],
  };
}

/** What the tree above must look like on disk, names and targets as bytes (Latin-1). */
const EXPECTED: Record<string, string> = {
  "bad\xff\xfe.txt": "file",
  "bad\xff\xfd.txt": "file",
  "a\x1b[31mred": "file",
  "new\nline": "file",
  "bell\x07": "file",
  "back\\slash": "file",
  "d\xe9j\xe0": "dir",
  "d\xe9j\xe0/caf\xe9": "file",
  [LONG]: "file",
  "raw-link": "symlink -> bad\xff\xfe.txt",
};

function shape(dir: string, skip: (path: string) => boolean = () => false): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [path, e] of rawTree(dir)) {
    if (!skip(path)) out[path] = e.type === "symlink" ? `symlink -> ${e.content}` : e.type;
  }
  return out;
}

async function listed(fs: FileSystem<FsNode>, opts: LsOptions): Promise<string> {
  const chunks: Buffer[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _encoding, done) {
      chunks.push(chunk);
      done();
    },
  });
  await printListing(fs, "/", opts, new StdoutWriter(sink));
  return Buffer.concat(chunks).toString("utf8");
}

/** `ls -b` of every path below `dir` as "/name" lines, sorted: GNU's escaping, with spaces left alone. */
async function gnuEscaped(dir: string, skip: RegExp = /^$/): Promise<string[]> {
  const r = await run("bash", ["-c", "find . -mindepth 1 -exec ls -b -d {} +"], { cwd: dir, env: { LC_ALL: "C.UTF-8" } });
  assert.equal(r.code, 0, r.stderr);
  return r.stdout
    .split("\n")
    .filter((l) => l !== "")
    .map((l) => l.replace(/^\./, "").replaceAll("\\ ", " "))
    .filter((l) => !skip.test(l))
    .sort();
}

/** Exact bytes of every path below `dir` ("/name", Latin-1), as find prints them. */
async function findPaths(dir: string, skip: RegExp = /^$/): Promise<string[]> {
  const r = await run("bash", ["-c", "find . -mindepth 1 -print0"], { cwd: dir });
  return r.stdoutBytes
    .toString("latin1")
    .split("\0")
    .filter((p) => p !== "")
    .map((p) => p.slice(1))
    .filter((p) => !skip.test(p))
    .sort();
}

/** The exact bytes of a `ls --json` entry's path (Latin-1). */
function jsonPathBytes(e: LsJsonEntry): string {
  return (e.pathBytes === undefined ? Buffer.from(e.path) : Buffer.from(e.pathBytes, "base64")).toString("latin1");
}

describe("names that are not UTF-8 or hold control characters (FileSystem double)", () => {
  test("extract writes the exact bytes of names and symlink targets; a 255-byte name is kept whole", async () => {
    const fs = new FakeFs(oddNames());
    const out = join(tempDir(), "out");
    const summary = await extractTree(fs, await resolvePath(fs, "/"), out);
    assert.equal(summary.files, 8);
    assert.deepEqual(shape(out), EXPECTED);
  });

  test("ls -R shows the names as GNU ls -b shows the extracted ones; ls -l escapes the link target too", async () => {
    const fs = new FakeFs(oddNames());
    const out = join(tempDir(), "out");
    await extractTree(fs, await resolvePath(fs, "/"), out);
    const mine = (await listed(fs, { recursive: true })).split("\n").filter((l) => l !== "").sort();
    assert.deepEqual(mine, await gnuEscaped(out));
    assert.ok(mine.includes("/bad\\377\\376.txt") && mine.includes("/a\\033[31mred") && mine.includes("/new\\nline"), mine.join("\n"));
    const long = await listed(fs, { long: true });
    assert.match(long, /  raw-link -> bad\\377\\376\.txt\n/);
    assert.doesNotMatch(long, /[\x00-\x09\x0b-\x1f]/, "no control character reaches the terminal");
  });

  test("ls --json: name and path are printable, nameBytes/pathBytes/targetBytes hold the exact bytes, only when not UTF-8", async () => {
    const fs = new FakeFs(oddNames());
    const out = join(tempDir(), "out");
    await extractTree(fs, await resolvePath(fs, "/"), out);
    const entries = JSON.parse(await listed(fs, { recursive: true, json: true })) as LsJsonEntry[];
    assert.deepEqual(entries.map(jsonPathBytes).sort(), await findPaths(out));
    const bad = entries.find((e) => e.path === "/bad\ufffd\ufffd.txt" && Buffer.from(e.nameBytes ?? "", "base64").equals(bytes("bad\xff\xfe.txt")));
    assert.ok(bad, "the printable name has U+FFFD, nameBytes the bytes");
    const inLatin = entries.find((e) => e.name === "caf\ufffd");
    assert.equal(inLatin?.pathBytes, bytes("/d\xe9j\xe0/caf\xe9").toString("base64"));
    assert.equal(inLatin?.nameBytes, bytes("caf\xe9").toString("base64"));
    const link = entries.find((e) => e.name === "raw-link");
    assert.deepEqual([link?.target, link?.targetBytes, "nameBytes" in (link ?? {})], ["bad\ufffd\ufffd.txt", bytes("bad\xff\xfe.txt").toString("base64"), false]);
    const esc = entries.find((e) => e.name === "a\x1b[31mred");
    assert.ok(esc && !("nameBytes" in esc) && !("pathBytes" in esc), "valid UTF-8 (even with ESC) needs no bytes");
  });

  test("warnings quote names escaped: an unsafe name holding ESC and raw bytes", async () => {
    const fs = new FakeFs({ children: [[raw("x/\x1b[2J\xff"), { content: "x" }]] });
    const warnings: string[] = [];
    await extractTree(fs, await resolvePath(fs, "/"), join(tempDir(), "out"), { onWarning: (m) => warnings.push(m) });
    assert.deepEqual(warnings, ['/x/\\033[2J\\377: unsafe name, extracted as "x_\\033[2J\\377"']);
  });
});

describe("names that are not UTF-8 or hold control characters, in images made by real tools", { skip: needs("mkfs.ext4", "debugfs", "mksquashfs", "unsquashfs") }, () => {
  let dir = "";
  before(async () => {
    dir = await fixture("make-listing-images.sh", "listing");
  });

  const images = [
    {
      image: "names.ext4",
      reference: (img: string, to: string) => sh(`mkdir ${to} && debugfs -R "rdump / ${to}" ${img} 2>/dev/null`),
      // debugfs rdump leaves out fifos and sockets; lost+found is not in the source.
      skip: /^\/?(lost\+found|fifo|socket)$/,
    },
    {
      image: "names.sqfs",
      reference: (img: string, to: string) => sh(`unsquashfs -q -n -d ${to} ${img} >/dev/null`),
      // Devices and FIFOs have their own tests.
      skip: /^\/?(dev|dev\/.*|fifo|socket)$/,
    },
  ];

  for (const { image, reference, skip } of images) {
    test(`${image}: extract writes the names byte for byte as ${image.endsWith("ext4") ? "debugfs rdump" : "unsquashfs"} does; ls -R shows them as GNU ls -b; --json round-trips them`, async () => {
      const img = join(dir, image);
      const tmp = tempDir();
      const mine = join(tmp, "platter");
      const theirs = join(tmp, "reference");
      const r = await platter(["extract", img, "-o", mine, "-q"]);
      assert.equal(r.code, 0, r.stderr);
      await reference(img, theirs);
      const notCompared = (p: string) => skip.test(p);
      assert.deepEqual(shape(mine, notCompared), shape(theirs, notCompared));
      assert.deepEqual(shape(theirs, notCompared), Object.fromEntries(Object.entries(EXPECTED).map(([p, t]) => [p, t])));

      const ls = await platter(["ls", img, "-R"]);
      assert.equal(ls.code, 0, ls.stderr);
      const lines = ls.stdout.split("\n").filter((l) => l !== "" && !skip.test(l)).sort();
      assert.deepEqual(lines, await gnuEscaped(theirs, skip));

      const json = await platter(["ls", img, "-R", "--json"]);
      const entries = (JSON.parse(json.stdout) as LsJsonEntry[]).filter((e) => !skip.test(e.path));
      assert.deepEqual(entries.map(jsonPathBytes).sort(), await findPaths(theirs, skip));
    });
  }
});
