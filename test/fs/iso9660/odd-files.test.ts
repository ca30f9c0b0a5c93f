/**
 * Names that are not UTF-8, and files that are not files, in Rock Ridge
 * images xorriso and genisoimage made (test/fixtures/make-odd-iso.sh): every
 * name and symlink target comes back as the exact bytes of the source folder;
 * FIFOs, sockets and devices keep their type, and devices their numbers as
 * stat(1) shows them on the source (and bsdtar on xorriso's image: it reads
 * genisoimage's PN entries wrong, see rrip.ts deviceNumbers).
 */
import assert from "node:assert/strict";
import { readdirSync, readlinkSync } from "node:fs";
import { describe, test } from "node:test";
import { openIso9660, type Iso9660FileSystem } from "../../../src/fs/iso9660/index.js";
import { nameBytes } from "../../../src/fs/names.js";
import { listAll } from "../../../src/fs/walk.js";
import { openSource } from "../../../src/io/file-source.js";
import { isRoot, needs } from "../../helpers/env.js";
import { fixture } from "../../helpers/fixtures.js";
import { run } from "../../helpers/run.js";

function oddIso(tool: "xorriso" | "genisoimage"): Promise<string> {
  return fixture("make-odd-iso.sh", `odd-${tool}.iso`, [tool]);
}

async function withIso<T>(iso: string, fn: (fs: Iso9660FileSystem) => Promise<T>): Promise<T> {
  const source = await openSource(iso);
  try {
    return await fn(await openIso9660(source));
  } finally {
    await source.close();
  }
}

/** mtree's \ooo quoting back to bytes. */
function mtreeBytes(text: string): Buffer {
  return Buffer.from(text.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(Number.parseInt(o, 8))), "latin1");
}

/** Each source entry's type and device numbers, from stat(1). */
async function sourceTypes(src: string): Promise<Map<string, string>> {
  const r = await run("bash", ["-c", `cd ${src} && stat -c '%F|%t|%T|%n' *`], { env: { LC_ALL: "C" } });
  assert.equal(r.code, 0, r.stderr);
  const types = new Map<string, string>();
  // latin1: one character per byte, so names that are not UTF-8 survive.
  for (const line of r.stdoutBytes.toString("latin1").trim().split("\n")) {
    const [kind, major, minor, name] = line.split("|");
    const type = { "regular file": "file", directory: "dir", "symbolic link": "symlink", fifo: "fifo", socket: "socket", "character special file": "char", "block special file": "block" }[kind] ?? kind;
    const device = type === "char" || type === "block" ? ` ${Number.parseInt(major, 16)},${Number.parseInt(minor, 16)}` : "";
    types.set(name, `${type}${device}`);
  }
  return types;
}

for (const tool of ["xorriso", "genisoimage"] as const) {
  describe(`odd names and special files in a ${tool} image`, { skip: needs(tool) }, () => {
    test("names and symlink targets that are not UTF-8 come back as the source folder's bytes", async () => {
      const iso = await oddIso(tool);
      const src = `${iso}.src`;
      await withIso(iso, async (fs) => {
        const entries = await listAll(fs, await fs.root());
        const ours = entries.map((e) => nameBytes(e.name).toString("latin1")).sort();
        const theirs = readdirSync(src, { encoding: "buffer" }).map((b) => b.toString("latin1")).sort();
        assert.deepEqual(ours, theirs);
        const link = entries.find((e) => e.node.stat.type === "symlink") ?? assert.fail("no symlink");
        const target = readlinkSync(Buffer.concat([Buffer.from(`${src}/`), nameBytes(link.name)]), { encoding: "buffer" });
        assert.ok(nameBytes(await fs.readlink(link.node)).equals(target));
        assert.equal(link.node.stat.size, target.length);
        const dir = entries.find((e) => e.node.stat.type === "dir") ?? assert.fail("no folder");
        assert.deepEqual((await listAll(fs, dir.node)).map((e) => e.name), ["inside"]);
        assert.ok(nameBytes(dir.name).equals(Buffer.from("dir\xe9", "latin1")));
      });
    });

    test("FIFOs, sockets and devices keep their type; devices their numbers (stat -c '%t %T' on the source); sizes are 0", async () => {
      const iso = await oddIso(tool);
      const expected = await sourceTypes(`${iso}.src`);
      await withIso(iso, async (fs) => {
        const ours = new Map<string, string>();
        for (const e of await listAll(fs, await fs.root())) {
          const s = e.node.stat;
          if (["fifo", "socket", "char", "block"].includes(s.type)) assert.equal(s.size, 0, e.name);
          ours.set(nameBytes(e.name).toString("latin1"), `${s.type}${s.rdev ? ` ${s.rdev.join(",")}` : ""}`);
        }
        assert.deepEqual(ours, expected);
        if (isRoot) assert.equal(ours.get("block-259-300"), "block 259,300");
      });
    });
  });
}

describe("devices of an xorriso image", { skip: needs("xorriso", "bsdtar") }, () => {
  test("have the numbers bsdtar reads", { skip: isRoot ? false : "SKIPPED: needs root (mknod)" }, async () => {
    const iso = await oddIso("xorriso");
    const mtree = await run("bsdtar", ["-cf", "-", "--format=mtree", "--options=!all,type,device", `@${iso}`]);
    const theirs = new Map<string, string>();
    for (const line of mtree.stdout.split("\n")) {
      const m = /^\.\/(\S+) type=(char|block) device=native,(\d+),(\d+)$/.exec(line);
      if (m) theirs.set(mtreeBytes(m[1]).toString("latin1"), `${m[2]} ${m[3]},${m[4]}`);
    }
    assert.equal(theirs.size, 4);
    await withIso(iso, async (fs) => {
      for (const e of await listAll(fs, await fs.root())) {
        const s = e.node.stat;
        if (s.type === "char" || s.type === "block") assert.equal(`${s.type} ${s.rdev?.join(",")}`, theirs.get(e.name), e.name);
      }
    });
  });
});
