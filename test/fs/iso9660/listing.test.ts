/**
 * list() streams a directory record by record: the first names of a large
 * directory come before the rest of it is read, and it is never held whole;
 * small directories are kept (an LRU), so lookups in them read nothing twice.
 */
import assert from "node:assert/strict";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, test } from "node:test";
import { openIso9660 } from "../../../src/fs/iso9660/index.js";
import { CountingSource } from "../../../src/io/counting-source.js";
import { MemorySource } from "../../../src/io/memory-source.js";
import { needs } from "../../helpers/env.js";
import { nodeAt, xorrisoImage } from "./craft.js";

const NAMES = 3000;
const nameOf = (i: number) => `${String(i).padStart(5, "0")}-${"n".repeat(190)}`;

describe("ISO 9660 listings", { skip: needs("genisoimage") }, () => {
  test("the first entries of a large directory come before the whole directory is read; lookups stop at the name", async () => {
    // genisoimage: xorriso 1.5.4 fails on this folder ("Calculated/written tree end address mismatch").
    const { image } = await xorrisoImage({ "small/a": "a", "small/b": "b" }, {
      tool: "genisoimage",
      prepare: (src) => {
        for (let i = 0; i < NAMES; i++) writeFileSync(join(src, nameOf(i)), "");
      },
    });
    const counting = new CountingSource(new MemorySource(image, 2048, "big.iso"));
    const fs = await openIso9660(counting);
    const root = await fs.root();
    const directoryBytes = root.sections[0].length;
    assert.ok(directoryBytes > 700 << 10, `root directory of ${directoryBytes} bytes`);

    counting.bytesRead = 0;
    const first: string[] = [];
    for await (const e of fs.list(root)) {
      first.push(e.name);
      if (first.length === 3) break;
    }
    assert.deepEqual(first, [0, 1, 2].map(nameOf));
    assert.ok(counting.bytesRead < directoryBytes, `read ${counting.bytesRead} bytes of a ${directoryBytes}-byte directory for 3 names`);

    counting.bytesRead = 0;
    let count = 0;
    for await (const _ of fs.list(root)) count++;
    assert.equal(count, NAMES + 1);
    assert.ok(counting.bytesRead >= directoryBytes, "the whole directory is read when listed whole");

    counting.bytesRead = 0;
    assert.ok(await fs.lookup(root, nameOf(1)));
    assert.ok(counting.bytesRead < directoryBytes, `lookup of an early name read ${counting.bytesRead} bytes`);

    // A small directory is kept: looking up in it again reads nothing.
    const small = await nodeAt(fs, "/small");
    assert.ok(await fs.lookup(small, "b"));
    counting.bytesRead = 0;
    assert.ok(await fs.lookup(small, "a"));
    assert.equal(await fs.lookup(small, "c"), undefined);
    assert.equal(counting.bytesRead, 0);
  });
});
