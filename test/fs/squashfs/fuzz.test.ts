import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { before, describe, test } from "node:test";
import { decodeSuperblock, openSquashfs } from "../../../src/fs/squashfs/index.js";
import { needs } from "../../helpers/env.js";
import { fixture } from "../../helpers/fixtures.js";
import { FUZZ_COPIES, fuzzImage, tryImage } from "../../helpers/fs-fuzz.js";

describe("squashfs reader under bit flips", { skip: needs("root", "mksquashfs", "setfattr") }, () => {
  let dir = "";
  before(async () => {
    dir = await fixture("make-squashfs-images.sh", "squashfs");
  });

  for (const name of ["gzip", "xz", "zstd", "lz4", "nocomp"]) {
    test(`${name}: ${FUZZ_COPIES} bit-flipped copies read fine or end in a PlatterError, within their read budget`, async (t) => {
      const image = readFileSync(join(dir, `${name}.sqfs`));
      const sb = decodeSuperblock(image);
      assert.equal((await tryImage(image, openSquashfs, `${name}.sqfs as made`)).outcome, "read");
      // Half the flips hit the superblock and the metadata tables, where one bit changes the most.
      const result = await fuzzImage(image, openSquashfs, {
        copies: FUZZ_COPIES,
        hot: [
          [0, 96],
          [sb.inodeTableStart, sb.bytesUsed],
        ],
        deepEvery: 20, // a whole walk lists 3000 inodes and inflates every file's first 64 KiB
      });
      t.diagnostic(JSON.stringify(result));
      // fuzzImage failed the test on any copy that crashed or read past its budget; here: the flips reached past the superblock.
      assert.ok(result.opened >= result.copies / 2, `only ${result.opened} of ${result.copies} copies opened`);
    });
  }
});
