import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { before, describe, test } from "node:test";
import { decodeSuperblock, openSquashfs } from "../../../src/fs/squashfs/index.js";
import { needs } from "../../helpers/env.js";
import { fixture } from "../../helpers/fixtures.js";
import { fuzzImage } from "../../helpers/fs-fuzz.js";

describe("squashfs reader under bit flips", { skip: needs("root", "mksquashfs", "setfattr") }, () => {
  let dir = "";
  before(async () => {
    dir = await fixture("make-squashfs-images.sh", "squashfs");
  });

  for (const name of ["gzip", "xz", "zstd", "lz4", "nocomp"]) {
    test(`${name}: 1,000 bit-flipped copies end in a clean PlatterError or read fine, none hangs`, async () => {
      const image = readFileSync(join(dir, `${name}.sqfs`));
      const sb = decodeSuperblock(image);
      // Half the flips hit the superblock and the metadata tables, where one bit changes the most.
      const result = await fuzzImage(image, openSquashfs, {
        copies: 1000,
        hot: [
          [0, 96],
          [sb.inodeTableStart, sb.bytesUsed],
        ],
        deepEvery: 20, // a whole walk lists 3000 inodes and inflates every file's first 64 KiB
      });
      assert.equal(result.opened + result.failedCleanly >= 1000, true);
      console.log(`${name}: ${JSON.stringify(result)}`);
    });
  }
});
