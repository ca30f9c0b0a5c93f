import assert from "node:assert/strict";
import { mkdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { before, describe, test } from "node:test";
import { openExt } from "../../src/fs/ext/index.js";
import { nameBytes } from "../../src/fs/names.js";
import { fileTypeFromMode } from "../../src/fs/types.js";
import { listAll } from "../../src/fs/walk.js";
import { openSource } from "../../src/io/file-source.js";
import { needs } from "../helpers/env.js";
import { fixture } from "../helpers/fixtures.js";
import { manifest, project } from "../helpers/manifest.js";
import { platter, run, sh } from "../helpers/run.js";
import { tempDir } from "../helpers/tmp.js";

const IMAGES = ["ext4.img", "ext4-1k.img", "ext4-inline.img", "ext4-64k.img", "ext4-metabg.img", "ext3-1k.img", "ext2.img"];
const skip = needs("debugfs", "mkfs.ext4", "e2fsck");

describe("ext2/3/4 reader", { skip }, () => {
  let dir = "";
  before(async () => {
    dir = await fixture("make-ext-images.sh", "ext");
  });

  const sourceManifests = new Map<string, ReturnType<typeof manifest>>();
  const sourceManifest = (name: string) => {
    if (!sourceManifests.has(name)) sourceManifests.set(name, manifest(join(dir, name)));
    return sourceManifests.get(name) as ReturnType<typeof manifest>;
  };

  for (const image of IMAGES) {
    // debugfs 1.47 rdump drops setuid/setgid/sticky bits (mode_xlate keeps rwx only), leaves symlink
    // times alone, and dumps inline-data files padded to 60 bytes: against it, compare what it keeps.
    const withDebugfs = image !== "ext4-inline.img";
    test(`extract of ${image} equals the tree mke2fs -d was given (full modes, owners, mtimes, symlinks, hard links)${withDebugfs ? " and debugfs rdump (rwx modes, owners, sizes, bytes, targets, mtimes)" : ""}`, async () => {
      const img = join(dir, image);
      const tmp = tempDir();
      const mine = join(tmp, "platter");
      const r = await platter(["extract", img, "-o", mine, "-q"]);
      assert.equal(r.code, 0, r.stderr);
      const a = manifest(mine);

      const source = image === "ext4-64k.img" ? "small" : "tree";
      // mke2fs -d 1.47.0 with inline_data records the size of a file ending in a hole rounded up
      // to its last block (debugfs stat shows the same size): those two are checked against debugfs stat.
      const roundedByMke2fs = (path: string) => image === "ext4-inline.img" && (path === "fragmented.bin" || path === "huge-sparse.bin");
      const notInTree = (path: string) =>
        path.startsWith("lost+found") || path === "preallocated" || path === "links/fifo" || roundedByMke2fs(path);
      const fields = ["type", "mode", "uid", "gid", "size", "content", "mtime"] as const;
      assert.deepEqual(project(a, [...fields], notInTree), project(sourceManifest(source), [...fields], notInTree));
      for (const path of ["fragmented.bin", "huge-sparse.bin"].filter(roundedByMke2fs)) {
        const stat = await sh(`debugfs -R "stat /${path}" ${img} 2>/dev/null`);
        assert.equal(a.get(path)?.size, Number(/Size: (\d+)/.exec(stat)?.[1]), `${path}: size as debugfs stat says`);
      }
      if (source === "tree") {
        const ino = (p: string) => a.get(p)?.ino;
        assert.equal(ino("links/hard-a"), ino("links/hard-b"), "hard links extracted as hard links");
        assert.equal(ino("links/hard-a"), ino("home/alice/hard-c"));
        assert.equal(a.get("links/hard-a")?.nlink, 3);
      }

      if (!withDebugfs) return;
      // rdump writes holes out as zeros: leave out the 70 MiB sparse file (compared with the tree above,
      // and with debugfs cat below) to spare the disk.
      const theirs = join(tmp, "debugfs");
      const top = (await platter(["ls", img])).stdout.trim().split("\n").filter((n) => n !== "huge-sparse.bin");
      await sh(`mkdir ${theirs} && debugfs -R 'rdump ${top.map((n) => `"/${n}"`).join(" ")} ${theirs}' ${img}`);
      a.delete("huge-sparse.bin");
      a.delete("links/fifo"); // rdump makes no fifos; platter does
      const b = manifest(theirs);
      for (const e of a.values()) e.mode &= 0o777;
      const kept = ["type", "mode", "uid", "gid", "size", "content"] as const;
      assert.deepEqual(project(a, [...kept]), project(b, [...kept]));
      const noLinks = (_: string, e: { type: string }) => e.type === "symlink";
      assert.deepEqual(project(a, ["mtime"], noLinks), project(b, ["mtime"], noLinks));
    });
  }

  test("ls --json matches debugfs ls -l (inode numbers aside) on ext4.img", async () => {
    const img = join(dir, "ext4.img");
    for (const path of ["/", "/home/alice", "/links", "/modes"]) {
      const r = await platter(["ls", img, path, "--json"]);
      assert.equal(r.code, 0, r.stderr);
      const mine = JSON.parse(r.stdout) as Array<{ name: string; size: number; mode: number; mtime: number; type: string }>;
      const out = await sh(`debugfs -R "ls -l ${path}" ${img} 2>/dev/null`);
      // "     12  100644 (1)      0      0       6 14-Nov-2023 22:13 hello.txt"
      const theirs = out
        .split("\n")
        .map((l) => /^\s*\d+\s+(\d+)\s+\((\d+)\)\s+\d+\s+\d+\s+(\d+)\s+\S+\s+\S+\s(.*)$/.exec(l))
        .filter((m): m is RegExpExecArray => m !== null && m[4] !== "." && m[4] !== "..")
        .map((m) => ({ name: m[4], mode: Number.parseInt(m[1], 8) & 0o7777, size: Number(m[3]) }))
        .sort((x, y) => (x.name < y.name ? -1 : 1));
      assert.deepEqual(
        mine.map((e) => ({ name: e.name, mode: e.mode, size: e.size })),
        theirs,
      );
    }
  });

  test("cat equals debugfs cat on sparse, fragmented, preallocated (unwritten extent) and inline files", async () => {
    const cases: Array<[string, string]> = [
      ["ext4.img", "/sparse.bin"],
      ["ext4.img", "/fragmented.bin"],
      ["ext4.img", "/preallocated"],
      ["ext4-inline.img", "/home/alice/small-200"],
      ["ext3-1k.img", "/huge-sparse.bin"],
      ["ext4.img", "/links/fast-link"],
    ];
    for (const [image, path] of cases) {
      const img = join(dir, image);
      const mine = await platter(["cat", img, path]);
      assert.equal(mine.code, 0, mine.stderr);
      const theirs = await run("debugfs", ["-R", `cat ${path.replace("/links/fast-link", "/links/target.txt")}`, img]);
      assert.ok(mine.stdoutBytes.equals(theirs.stdoutBytes), `${image}:${path}: ${mine.stdoutBytes.length} vs ${theirs.stdoutBytes.length} bytes`);
    }
  });

  test("sparse files are extracted sparse (du agrees), holes and unwritten extents read as zeros", async () => {
    const out = join(tempDir(), "x");
    const r = await platter(["extract", join(dir, "ext3-1k.img"), "/huge-sparse.bin", "-o", out, "-q"]);
    assert.equal(r.code, 0, r.stderr);
    const st = statSync(join(out, "huge-sparse.bin"));
    assert.equal(st.size, 70 << 20);
    assert.ok(st.blocks * 512 < 1 << 20, `${st.blocks * 512} bytes allocated`);
  });

  test("htree folder of 3000 entries lists completely and lookups find entries in it", async () => {
    const img = join(dir, "ext4.img");
    const r = await platter(["ls", img, "/big-dir"]);
    assert.equal(r.stdout.trim().split("\n").length, 3000);
    const one = await platter(["cat", img, "/big-dir/entry-02999-with-a-longer-name"]);
    assert.equal(one.stdout, "2999\n");
  });

  test("an mtime past 2038 (epoch bits in i_mtime_extra) reads as debugfs stat shows it: 2100-01-01", async () => {
    const img = join(dir, "ext4.img");
    const [entry] = JSON.parse((await platter(["ls", img, "/preallocated", "--json"])).stdout);
    assert.equal(entry.mtime, 4102444800);
    assert.match(await sh(`debugfs -R "stat /preallocated" ${img} 2>/dev/null`), /mtime: 0xf4865700:00000001 -- Fri Jan  1 00:00:00 2100/);
  });

  test("label and type are blkid's", async () => {
    for (const [image, type] of [["ext4.img", "ext4"], ["ext3-1k.img", "ext3"], ["ext2.img", "ext2"]]) {
      const blkid = await sh(`blkid -o value -s TYPE ${join(dir, image)}`);
      assert.equal(blkid.trim(), type);
    }
  });
});

/** A name as debugfs ls prints it: bytes outside printable ASCII as \xHH. */
function debugfsName(name: string): string {
  return [...nameBytes(name)].map((b) => (b < 0x20 || b >= 0x7f ? `\\x${b.toString(16).padStart(2, "0")}` : String.fromCharCode(b))).join("");
}

describe("ext: what mkfs.ext4 -d stores, read as debugfs reads it", { skip: needs("root", "mkfs.ext4", "debugfs") }, () => {
  const work = tempDir();
  let img = "";
  before(async () => {
    const src = join(work, "src");
    mkdirSync(src);
    // Two names that decoding to U+FFFD would make one, device nodes (old and new encodings), a fifo, a socket.
    writeFileSync(Buffer.from(`${src}/bad\xff\xfe.txt`, "latin1"), "fe\n");
    writeFileSync(Buffer.from(`${src}/bad\xff\xfd.txt`, "latin1"), "fd\n");
    await sh(`cd ${src} && ln -s "$(printf 'bad\\377\\376.txt')" link && mknod null c 1 3 && mknod sda1 b 8 1 && mknod big c 300 70000 && mkfifo fifo`);
    await sh(`cd ${src} && perl -MSocket -e 'socket(my $s, PF_UNIX, SOCK_STREAM, 0) or die; bind($s, pack_sockaddr_un("sock")) or die'`);
    img = join(work, "special.img");
    await sh(`mkfs.ext4 -q -F -d ${src} ${img} 4M`);
  });

  test("names that are not UTF-8 stay distinct, byte for byte as debugfs ls shows them, and so do symlink targets", async () => {
    const source = await openSource(img);
    try {
      const fs = await openExt(source);
      const root = await fs.root();
      const entries = await listAll(fs, root);
      const theirs = (await sh(`debugfs -R "ls -l /" ${img} 2>/dev/null`))
        .split("\n")
        .map((l) => /^\s*\d+\s+\d+\s+\(\d+\)\s+\d+\s+\d+\s+\d+\s+\S+\s+\S+\s(.*)$/.exec(l)?.[1])
        .filter((n): n is string => n !== undefined && n !== "." && n !== "..");
      assert.deepEqual(entries.map((e) => debugfsName(e.name)).sort(), theirs.sort());
      const bad = entries.filter((e) => e.name.startsWith("bad"));
      assert.deepEqual(bad.map((e) => nameBytes(e.name).toString("hex")).sort(), ["626164fffd2e747874", "626164fffe2e747874"]);
      for (const e of bad) {
        const node = await fs.lookup(root, e.name);
        assert.equal((await fs.read(node as typeof e.node, 0, 3)).toString(), nameBytes(e.name)[4] === 0xfe ? "fe\n" : "fd\n");
      }
      const link = entries.find((e) => e.name === "link")?.node;
      assert.ok(link);
      assert.equal(nameBytes(await fs.readlink(link)).toString("hex"), "626164fffe2e747874");
    } finally {
      await source.close();
    }
  });

  test("devices, fifos and sockets have their type and rdev as debugfs stat says (old and new device encodings)", async () => {
    const source = await openSource(img);
    try {
      const fs = await openExt(source);
      const root = await fs.root();
      for (const name of ["null", "sda1", "big", "fifo", "sock"]) {
        const node = await fs.lookup(root, name);
        assert.ok(node, name);
        const stat = await sh(`debugfs -R "stat /${name}" ${img} 2>/dev/null`);
        const type = { "character special": "char", "block special": "block", FIFO: "fifo", socket: "socket" }[/Type: (.+?)\s{2,}/.exec(stat)?.[1] ?? ""];
        assert.equal(node.stat.type, type, name);
        assert.equal(fileTypeFromMode(node.inode.mode), type);
        const device = /Device major\/minor number: (\d+):(\d+)/.exec(stat);
        assert.deepEqual(node.stat.rdev, device ? [Number(device[1]), Number(device[2])] : undefined, name);
      }
    } finally {
      await source.close();
    }
  });

  test("a directory whose extents map the same block again is corrupt, naming the inode (e2fsck: duplicate blocks)", async () => {
    const work = tempDir();
    const src = join(work, "src");
    mkdirSync(join(src, "d"), { recursive: true });
    for (const n of ["a", "b", "c"]) writeFileSync(join(src, "d", n), n);
    const bad = join(work, "dup.img");
    await sh(`mkfs.ext4 -q -F -b 1024 -O ^metadata_csum -d ${src} ${bad} 4M`);
    const imap = await sh(`debugfs -R "imap /d" ${bad} 2>/dev/null`);
    const [, block, offset] = /located at block (\d+), offset (0x[0-9a-f]+)/.exec(imap) ?? [];
    const ino = Number(/Inode (\d+)/.exec(imap)?.[1]);
    const inodeAt = Number(block) * 1024 + Number(offset);
    const image = readFileSync(bad);
    const iBlock = inodeAt + 40;
    assert.equal(image.readUInt16LE(iBlock), 0xf30a, "an extent tree root");
    assert.equal(image.readUInt16LE(iBlock + 2), 1, "one extent");
    // Four extents, logical blocks 0..3, all on the directory's one physical block: four times the entries.
    const extent = Buffer.from(image.subarray(iBlock + 12, iBlock + 24));
    for (let i = 0; i < 4; i++) {
      extent.writeUInt32LE(i, 0);
      extent.copy(image, iBlock + 12 + 12 * i);
    }
    image.writeUInt16LE(4, iBlock + 2);
    image.writeUInt32LE(4 * 1024, inodeAt + 4); // i_size
    writeFileSync(bad, image);
    const r = await platter(["ls", bad, "/d"]);
    assert.equal(r.code, 1);
    assert.equal(r.stderr, `platter: ext inode ${ino}: block ${extent.readUInt32LE(8)} is mapped twice (a duplicate block)\n`);
    const fsck = await run("e2fsck", ["-fn", bad]);
    assert.match(fsck.stdout, /duplicate|multiply-claimed/i, "e2fsck agrees");
  });
});
