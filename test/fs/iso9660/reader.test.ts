import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import { describe, test } from "node:test";
import { openIso9660 } from "../../../src/fs/iso9660/index.js";
import { openSource } from "../../../src/io/file-source.js";
import { needs } from "../../helpers/env.js";
import { run } from "../../helpers/run.js";
import { bsdtarListing, lines, referenceIso, testTree, walk, withHardLinkSizes } from "./helpers.js";

for (const tool of ["xorriso", "genisoimage"] as const) {
  describe(`ISO 9660 reader on a ${tool}-made image`, { skip: needs(tool, "bsdtar") }, () => {
    test(`lists the Rock Ridge tree exactly as bsdtar does (names, types, modes, owners, sizes, mtimes, link targets)`, async () => {
      const iso = await referenceIso(tool);
      const src = await openSource(iso);
      try {
        const fs = await openIso9660(src);
        assert.equal(fs.tree, "rockridge");
        const ours = await walk(fs);
        const theirs = withHardLinkSizes(await bsdtarListing(iso), ours);
        assert.deepEqual(lines(ours), lines(theirs));
        assert.ok(ours.length > 300, `only ${ours.length} entries`);
        // The tree's deepest folders are at their true place, rr_moved is not shown.
        assert.ok(ours.some((e) => e.path === "deeper/d01/d02/d03/d04/d05/d06/d07/d08/d09/d10/d11/d12/d13/d14/d15/d16/d17/d18/d19/d20/bottom.txt"));
        assert.ok(!ours.some((e) => e.path.startsWith("rr_moved")));
        // Hard links share one extent.
        const a = ours.find((e) => e.path === "links/hardlink-a");
        const b = ours.find((e) => e.path === "links/hardlink-b");
        assert.ok(a?.id !== null && a?.id === b?.id);
      } finally {
        await src.close();
      }
    });

    test("file contents equal the source tree's (sha256 of every regular file)", async () => {
      const iso = await referenceIso(tool);
      const manifest = readFileSync(`${await testTree()}.manifest`, "utf8");
      const expected = new Map<string, string>();
      for (const line of manifest.split("\n")) {
        const [type, , , sha, path] = line.split("\t");
        if (type === "f" && path !== undefined) expected.set(path, sha);
      }
      const src = await openSource(iso);
      try {
        const fs = await openIso9660(src);
        let checked = 0;
        for (const e of await walk(fs)) {
          if (e.type !== "file") continue;
          let node = await fs.root();
          for (const part of e.path.split("/")) node = (await fs.lookup(node, part)) ?? assert.fail(`lookup ${e.path}`);
          const hash = createHash("sha256");
          for (let o = 0; o < e.size; o += 8 << 20) hash.update(await fs.read(node, o, Math.min(8 << 20, e.size - o)));
          assert.equal(hash.digest("hex"), expected.get(e.path), e.path);
          checked++;
        }
        assert.equal(checked, expected.size);
      } finally {
        await src.close();
      }
    });

    test("the Joliet tree has the names 7-Zip lists", { skip: needs("7zz") }, async () => {
      const iso = await referenceIso(tool);
      const src = await openSource(iso);
      try {
        const fs = await openIso9660(src, { tree: "joliet" });
        // 7-Zip shows names the Windows way: without a trailing dot.
        const ours = (await walk(fs)).map((e) => e.path.replace(/(.)\.$/, "$1")).sort();
        const r = await run("7zz", ["l", "-slt", "-ba", iso]);
        const theirs = r.stdout
          .split("\n")
          .filter((l) => l.startsWith("Path = "))
          .map((l) => l.slice("Path = ".length))
          .sort();
        assert.deepEqual(ours, theirs);
      } finally {
        await src.close();
      }
    });

    test("the plain ISO 9660 tree has the identifiers isoinfo lists", { skip: needs("isoinfo") }, async () => {
      const iso = await referenceIso(tool);
      const src = await openSource(iso);
      try {
        const fs = await openIso9660(src, { tree: "iso9660" });
        const ours = (await walk(fs)).map((e) => `/${e.path}`).sort();
        const r = await run("isoinfo", ["-f", "-i", iso]);
        const theirs = r.stdout
          .split("\n")
          .filter(Boolean)
          .map((p) => p.replace(/;\d+$/, "").replace(/(.)\.$/, "$1"))
          .sort();
        assert.deepEqual(ours, theirs);
      } finally {
        await src.close();
      }
    });

    test("volume ids agree with isoinfo -d", { skip: needs("isoinfo") }, async () => {
      const iso = await referenceIso(tool);
      const src = await openSource(iso);
      try {
        const fs = await openIso9660(src);
        const d = (await run("isoinfo", ["-d", "-i", iso])).stdout;
        const field = (name: string) => new RegExp(`^${name}: ?(.*)$`, "m").exec(d)?.[1].trim();
        assert.equal(fs.label, field("Volume id"));
        assert.equal(fs.volume.primary.systemId, field("System id"));
        assert.equal(fs.volume.primary.applicationId, field("Application id"));
        assert.equal(fs.volume.primary.dataPreparerId, field("Data preparer id"));
        assert.equal(fs.volume.primary.volumeSpaceSize, Number(field("Volume size is")));
        assert.equal(fs.volume.jolietLevel, 3);
        assert.equal(fs.volume.rockRidge, "RRIP_1991A");
      } finally {
        await src.close();
      }
    });
  });
}
