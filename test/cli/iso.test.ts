import assert from "node:assert/strict";
import { chmodSync, existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { before, describe, test } from "node:test";
import { openIso9660 } from "../../src/fs/iso9660/index.js";
import { openSource } from "../../src/io/file-source.js";
import { isRoot, needs } from "../helpers/env.js";
import { FIXTURES } from "../helpers/fixtures.js";
import { CLI, platter, run, sh } from "../helpers/run.js";
import { tempDir } from "../helpers/tmp.js";
import { bsdtarListing, lines, testTree, walk, withHardLinkSizes } from "../fs/iso9660/helpers.js";

const EPOCH = { SOURCE_DATE_EPOCH: "1700000000" };

describe("platter iso on the test tree", { skip: needs("bsdtar", "7zz", "isovfy", "xorriso", "isoinfo") }, () => {
  const work = tempDir();
  let tree: string;
  const iso = join(work, "tree.iso");
  before(async () => {
    tree = await testTree();
    const r = await platter(["iso", tree, "-o", iso, "-V", "PLATTER_TREE"], { env: EPOCH });
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stderr, "");
  });

  test("verify-iso passes: bsdtar extraction equals the tree, 7-Zip reads Joliet, isovfy is clean, xorriso loads it", async () => {
    const r = await run("bash", [join(FIXTURES, "verify-iso.sh"), iso, tree], { timeoutMs: 300_000 });
    assert.match(r.stdout, /^verify-iso: PASS/m, r.stdout);
    assert.match(r.stdout, /ok: {3}manifest identical/);
    assert.match(r.stdout, /ok: {3}isovfy: No errors found/);
  });

  test("isoinfo -d shows the volume id, Joliet level 3 and Rock Ridge", async () => {
    const d = (await run("isoinfo", ["-d", "-i", iso])).stdout;
    assert.match(d, /^Volume id: PLATTER_TREE$/m);
    assert.match(d, /^Application id: PLATTER \d/m);
    assert.match(d, /^Joliet with UCS level 3 found$/m);
    assert.match(d, /^Rock Ridge signatures version 1 found$/m);
    assert.equal(Number(/^Volume size is: (\d+)$/m.exec(d)?.[1]) * 2048, statSync(iso).size);
  });

  test("isoinfo -J -l lists the Joliet names (long ones up to 103 characters)", async () => {
    const l = (await run("isoinfo", ["-J", "-l", "-i", iso])).stdout;
    for (const name of ["MixedCase.TXT", "mixedcase.txt", "name with  spaces .txt", "a.b.c.tar.gz", "semi_colon_1", "trailingdot"]) {
      assert.ok(l.includes(`  ${name};1 \n`), `Joliet name ${name} missing`);
    }
    assert.ok(l.includes(`${"L".repeat(99)}.txt`), "200-byte name not cut to 103 characters with its extension");
    assert.ok(!l.includes("L".repeat(100)));
  });

  test("two builds with SOURCE_DATE_EPOCH are byte-identical (cmp)", async () => {
    const again = join(tempDir(), "again.iso");
    const r = await platter(["iso", tree, "-o", again, "-V", "PLATTER_TREE"], { env: EPOCH });
    assert.equal(r.code, 0, r.stderr);
    const cmp = await run("cmp", [iso, again]);
    assert.equal(cmp.code, 0, cmp.stdout + cmp.stderr);
  });

  test("our reader lists our image exactly as bsdtar does, and relocated folders sit in their true place", async () => {
    const src = await openSource(iso);
    try {
      const fs = await openIso9660(src);
      assert.equal(fs.volume.rockRidge, "IEEE_1282");
      const ours = await walk(fs);
      assert.deepEqual(lines(ours), lines(withHardLinkSizes(await bsdtarListing(iso), ours)));
      assert.ok(ours.some((e) => e.path.endsWith("d19/d20/bottom.txt")));
      const link = ours.find((e) => e.path === "links/long-symlink");
      assert.equal(link?.target?.length, 606);
      const owned = ours.find((e) => e.path === "owners/uid1000-gid100");
      if (isRoot) assert.deepEqual([owned?.uid, owned?.gid], [1000, 100]);
      // The hard-link pair shares one extent.
      const ids = ours.filter((e) => e.path.startsWith("links/hardlink-")).map((e) => e.id);
      assert.equal(ids.length, 2);
      assert.equal(ids[0], ids[1]);
    } finally {
      await src.close();
    }
  });

  test("the sparse 64 MiB file leaves a hole in the image, and the reader's dataRanges finds it", async () => {
    const allocated = statSync(iso).blocks * 512;
    assert.ok(allocated < statSync(iso).size - (32 << 20), `image takes ${allocated} bytes on disk`);
    const src = await openSource(iso);
    try {
      const fs = await openIso9660(src);
      const special = await fs.lookup(await fs.root(), "special");
      const sparse = await fs.lookup(special ?? assert.fail(), "sparse-64MiB.bin");
      const ranges = await fs.dataRanges(sparse ?? assert.fail());
      const covered = ranges.reduce((n, [, len]) => n + len, 0);
      assert.ok(covered >= 128 << 10 && covered < 4 << 20, JSON.stringify(ranges));
    } finally {
      await src.close();
    }
  });
});

describe("platter iso options and errors", () => {
  function smallTree(): string {
    const dir = join(tempDir(), "src");
    mkdirSync(join(dir, "sub"), { recursive: true });
    writeFileSync(join(dir, "hello.txt"), "hello\n");
    writeFileSync(join(dir, "sub", "Long File Name.txt"), "x\n");
    return dir;
  }

  test("SOURCE that is a file or missing is a usage error (exit 2), and no image is left", async () => {
    const dir = tempDir();
    const file = join(dir, "file");
    writeFileSync(file, "x");
    const out = join(dir, "out.iso");
    const r = await platter(["iso", file, "-o", out]);
    assert.equal(r.code, 2);
    assert.equal(r.stderr, `platter: ${file}: not a folder (platter iso builds an image from folders)\n`);
    const missing = await platter(["iso", join(dir, "nope"), "-o", out]);
    assert.equal(missing.code, 2);
    assert.match(missing.stderr, /^platter: .*nope: no such file or directory\n$/);
    assert.equal(existsSync(out), false);
  });

  test("an unreadable file is an error naming it and the half-written image is removed; --skip-unreadable leaves it out", async () => {
    const src = smallTree();
    const secret = join(src, "sub", "secret.bin");
    writeFileSync(secret, "secret");
    chmodSync(secret, 0);
    const outDir = tempDir();
    const out = join(outDir, "out.iso");
    // Root reads anything: run platter as nobody (setpriv) to make the file unreadable.
    const asUser = isRoot ? ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"] : [];
    await sh(`chmod -R a+rwX ${join(src, "..")} && chmod 0 ${secret} && chmod a+rwx ${outDir}`);
    const r = await run(asUser[0] ?? process.execPath, [...asUser.slice(1), ...(isRoot ? [process.execPath] : []), join(FIXTURES, "../../dist/cli/main.js"), "iso", src, "-o", out]);
    assert.equal(r.code, 1, r.stderr);
    assert.equal(r.stderr, `platter: ${secret}: permission denied (--skip-unreadable leaves it out)\n`);
    assert.equal(existsSync(out), false);
    const skip = await run(asUser[0] ?? process.execPath, [...asUser.slice(1), ...(isRoot ? [process.execPath] : []), join(FIXTURES, "../../dist/cli/main.js"), "iso", src, "-o", out, "--skip-unreadable"]);
    assert.equal(skip.code, 0, skip.stderr);
    assert.equal(skip.stderr, `platter: warning: left out ${secret}: permission denied\n`);
    const listing = (await run("bsdtar", ["-tf", out])).stdout;
    assert.match(listing, /hello\.txt/);
    assert.doesNotMatch(listing, /secret/);
  });

  test("an image written inside its source folder is not put into itself", { skip: needs("bsdtar") }, async () => {
    const src = smallTree();
    const out = join(src, "image.iso");
    const r = await platter(["iso", src, "-o", out]);
    assert.equal(r.code, 0, r.stderr);
    const listing = (await run("bsdtar", ["-tf", out])).stdout.split("\n").filter(Boolean).sort();
    assert.deepEqual(listing, [".", "hello.txt", "sub", "sub/Long File Name.txt"]);
  });

  test("-o - streams the image to stdout: bsdtar reads it from a pipe", { skip: needs("bsdtar") }, async () => {
    const src = smallTree();
    const file = join(tempDir(), "file.iso");
    await platter(["iso", src, "-o", file, "-V", "PIPE"], { env: EPOCH });
    const r = await platter(["iso", src, "-o", "-", "-V", "PIPE"], { env: EPOCH });
    assert.equal(r.code, 0, r.stderr);
    assert.ok(r.stdoutBytes.equals(readFileSync(file)), "stdout differs from the file build");
    const listing = await run("bsdtar", ["-tf", "-"], { input: r.stdoutBytes });
    assert.match(listing.stdout, /sub\/Long File Name\.txt/);
  });

  test("file data is copied by the kernel into an image file (strace shows copy_file_range): the bytes equal a build to a pipe and one that reads and writes (no FFI), over an old longer file", { skip: needs("strace") }, async () => {
    const src = join(tempDir(), "src");
    mkdirSync(src);
    const pattern = (n: number) => Buffer.from(Array.from({ length: n }, (_, i) => (i * 7 + (i >> 11)) & 0xff));
    for (const size of [0, 1, 2047, 2048, 2049, 300_001]) writeFileSync(join(src, `f${size}`), pattern(size));
    // More than one 64 MiB piece of in-kernel copy, and a sparse file whose hole stays a hole.
    writeFileSync(join(src, "big"), Buffer.concat([pattern(1 << 20), Buffer.alloc(64 << 20, 0x5a)]));
    await sh(`printf head > ${src}/sparse && truncate -s 3M ${src}/sparse && printf tail >> ${src}/sparse`);
    const dir = tempDir();
    const copied = join(dir, "copied.iso");
    writeFileSync(copied, Buffer.alloc(80 << 20, 0xff));
    const trace = join(dir, "trace");
    const r = await run("strace", ["-f", "-qq", "-e", "trace=copy_file_range", "-o", trace, process.execPath, CLI, "iso", src, "-o", copied, "-V", "COPY"], { env: EPOCH });
    assert.equal(r.code, 0, r.stderr);
    const copies = readFileSync(trace, "utf8").split("\n").filter((l) => /copy_file_range\(.*= [1-9]/.test(l));
    assert.ok(copies.length >= 8, `${copies.length} in-kernel copies`);
    const piped = await platter(["iso", src, "-o", "-", "-V", "COPY"], { env: EPOCH });
    assert.equal(piped.code, 0, piped.stderr);
    const readWrite = join(dir, "read-write.iso");
    const rw = await platter(["iso", src, "-o", readWrite, "-V", "COPY"], { env: { ...EPOCH, PLATTER_TEST_NO_FFI: "1" } });
    assert.equal(rw.code, 0, rw.stderr);
    const image = readFileSync(copied);
    assert.ok(image.equals(piped.stdoutBytes), "the copied image differs from the piped one");
    assert.ok(image.equals(readFileSync(readWrite)), "the copied image differs from the read-and-written one");
  });

  test("--no-rock --no-joliet: plain ISO 9660 names only, as isoinfo shows them", { skip: needs("isoinfo", "7zz") }, async () => {
    const src = smallTree();
    const out = join(tempDir(), "plain.iso");
    const r = await platter(["iso", src, "-o", out, "--no-rock", "--no-joliet"]);
    assert.equal(r.code, 0, r.stderr);
    const d = (await run("isoinfo", ["-d", "-i", out])).stdout;
    assert.match(d, /^NO Joliet present$/m);
    assert.match(d, /^NO Rock Ridge present$/m);
    const f = (await run("isoinfo", ["-f", "-i", out])).stdout.split("\n").filter(Boolean).sort();
    assert.deepEqual(f, ["/HELLO.TXT;1", "/SUB", "/SUB/LONG_FILE_NAME.TXT;1"]);
    const isovfy = (await run("isovfy", [out])).stdout;
    assert.match(isovfy, /No errors found/);
  });

  test("--no-rock keeps Joliet: 7-Zip shows the real names", { skip: needs("7zz") }, async () => {
    const src = smallTree();
    const out = join(tempDir(), "joliet.iso");
    const r = await platter(["iso", src, "-o", out, "--no-rock"]);
    assert.equal(r.code, 0, r.stderr);
    const l = (await run("7zz", ["l", "-slt", "-ba", out])).stdout;
    assert.match(l, /^Path = sub\/Long File Name\.txt$/m);
  });

  test("-V longer than 32 characters is a usage error naming the limit, as genisoimage and xorriso refuse it; nothing is written", { skip: needs("genisoimage", "xorriso") }, async () => {
    const src = smallTree();
    const dir = tempDir();
    const label = "L".repeat(33);
    const r = await platter(["iso", src, "-o", join(dir, "out.iso"), "-V", label]);
    assert.equal(r.code, 2);
    assert.equal(r.stderr, `platter: volume id '${label}' is 33 characters; an ISO 9660 volume id holds at most 32\n`);
    assert.equal(existsSync(join(dir, "out.iso")), false);
    assert.notEqual((await run("genisoimage", ["-quiet", "-V", label, "-o", join(dir, "g.iso"), src])).code, 0);
    assert.notEqual((await run("xorriso", ["-as", "mkisofs", "-quiet", "-V", label, "-o", join(dir, "x.iso"), src])).code, 0);
    const ok = await platter(["iso", src, "-o", join(dir, "out.iso"), "-V", "L".repeat(32), "--no-joliet"]);
    assert.equal(ok.code, 0, ok.stderr);
  });

  test("-V of 20 characters: the volume id keeps them all, the Joliet one has 16 and a warning says so, as xorriso's does", { skip: needs("isoinfo", "xorriso") }, async () => {
    const src = smallTree();
    const dir = tempDir();
    const label = "TWENTY_CHARACTERS_20";
    const r = await platter(["iso", src, "-o", join(dir, "out.iso"), "-V", label]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stderr, `platter: warning: volume id '${label}' is longer than the 16 characters of a Joliet volume id: Windows shows 'TWENTY_CHARACTER'\n`);
    assert.match((await run("isoinfo", ["-d", "-i", join(dir, "out.iso")])).stdout, new RegExp(`^Volume id: ${label}$`, "m"));
    const x = await run("xorriso", ["-as", "mkisofs", "-J", "-V", label, "-o", join(dir, "x.iso"), src]);
    assert.match(x.stderr, /WARNING : -volid text is too long for Joliet \(20 > 16\)/);
    const jolietId = async (iso: string) => {
      const source = await openSource(iso);
      try {
        return (await openIso9660(source)).volume.joliet?.volumeId;
      } finally {
        await source.close();
      }
    };
    assert.equal(await jolietId(join(dir, "out.iso")), "TWENTY_CHARACTER");
    assert.equal(await jolietId(join(dir, "out.iso")), await jolietId(join(dir, "x.iso")));
  });
});
