import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { before, describe, test } from "node:test";
import { decodeBootSector, openExfat } from "../../../src/fs/exfat/index.js";
import { needs } from "../../helpers/env.js";
import { fixture } from "../../helpers/fixtures.js";
import { FUZZ_COPIES, fuzzImage, tryImage } from "../../helpers/fs-fuzz.js";

describe("exFAT reader under bit flips", { skip: needs("root", "loop", "fuse", "mkfs.exfat", "mount.exfat-fuse") }, () => {
  let dir = "";
  before(async () => {
    dir = await fixture("make-exfat-images.sh", "exfat");
  });

  for (const name of ["c4k", "c512", "s4k"]) {
    test(`${name}: ${FUZZ_COPIES} bit-flipped copies read fine or end in a PlatterError, within their read budget`, async (t) => {
      const image = readFileSync(join(dir, `${name}.img`));
      const boot = decodeBootSector(image);
      assert.equal((await tryImage(image, openExfat, `${name}.img as made`)).outcome, "read");
      const bps = boot.bytesPerSector;
      const heap = boot.clusterHeapOffset * bps;
      // Half the flips hit the boot regions, the FAT entries in use, and the start of the
      // cluster heap (bitmap, up-case table, root and first directories).
      const result = await fuzzImage(image, openExfat, {
        copies: FUZZ_COPIES,
        hot: [
          [0, 24 * bps],
          [boot.fatOffset * bps, boot.fatOffset * bps + 64 * 1024],
          [heap, heap + 256 * 1024],
        ],
        deepEvery: 4,
      });
      t.diagnostic(JSON.stringify(result));
      // fuzzImage failed the test on any copy that crashed or read past its budget; here: the flips reached past the superblock.
      assert.ok(result.opened >= result.copies / 2, `only ${result.opened} of ${result.copies} copies opened`);
    });
  }
});
