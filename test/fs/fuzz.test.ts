/**
 * FUZZ_COPIES bit-flipped (and sometimes truncated) copies of each small ext and
 * FAT fixture, read in process (test/helpers/fs-fuzz.ts): each copy reads
 * fine or ends in a PlatterError, within a read budget.
 */
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { before, describe, test } from "node:test";
import { CorruptImageError } from "../../src/errors.js";
import { openFilesystem } from "../../src/fs/open.js";
import type { FileSystem, FsDirEntry, FsNode } from "../../src/fs/types.js";
import type { BlockSource } from "../../src/io/block-source.js";
import { needs } from "../helpers/env.js";
import { fixture } from "../helpers/fixtures.js";
import { FUZZ_COPIES, fuzzImage, tryImage } from "../helpers/fs-fuzz.js";

const COPIES = FUZZ_COPIES;

const FIXTURES: Array<[script: string, out: string, image: string]> = [
  ["make-ext-images.sh", "ext", "small-ext4.img"],
  ["make-ext-images.sh", "ext", "small-ext2.img"],
  ["make-fat-images.sh", "fat", "fat12.img"],
  ["make-fat-images.sh", "fat", "fat16.img"],
  ["make-fat-images.sh", "fat", "fat32.img"],
];

describe(`fuzz: ${COPIES} bit-flipped copies of each fixture`, { skip: needs("mkfs.ext4", "mkfs.vfat", "mcopy") }, () => {
  const images = new Map<string, Buffer>();
  before(async () => {
    for (const [script, out, image] of FIXTURES) images.set(image, readFileSync(join(await fixture(script, out), image)));
  });

  for (const [, , image] of FIXTURES) {
    test(`${image}: every copy reads fine or fails with a PlatterError, within its read budget`, async (t) => {
      const base = images.get(image) as Buffer;
      assert.equal((await tryImage(base, openFilesystem, `${image} as made`)).outcome, "read");
      // Half the flips in the first 64 KiB (boot sector, superblock, group descriptors, FATs).
      const result = await fuzzImage(base, openFilesystem, { copies: COPIES, hot: [[0, 65536]], maxFlips: 16, truncated: 0.1, deepEvery: 1 });
      t.diagnostic(JSON.stringify(result));
      assert.ok(result.opened >= COPIES / 2, `only ${result.opened} of ${COPIES} copies opened: the flips never reach past the superblock`);
    });
  }
});

describe("the fuzz harness itself (test/helpers/fs-fuzz.ts)", () => {
  const image = Buffer.alloc(1 << 20, 1);
  const dir: FsNode = { stat: { type: "dir", size: 0, mode: 0o755, mtime: 0, uid: 0, gid: 0, nlink: 2, id: 1 } };
  /** A FileSystem with an empty root whose list() does what `list` says. */
  const fakeReader = (list: (source: BlockSource) => AsyncIterable<FsDirEntry>) => async (source: BlockSource) =>
    ({
      type: "fake",
      label: null,
      root: async () => dir,
      list: () => list(source),
      lookup: async () => undefined,
      readlink: async () => "",
      read: async () => Buffer.alloc(0),
      close: async () => {},
    }) satisfies FileSystem;

  test("a reader that loops re-reading the same block fails, after a bounded number of reads (no clock)", async () => {
    let reads = 0;
    const looping = fakeReader(async function* (source) {
      for (;;) {
        await source.read(0, 4096);
        reads++;
      }
    });
    await assert.rejects(tryImage(image, looping, "looping"), /looping: a reader loops: .*read more than 4194304 bytes/);
    assert.equal(reads, (4 << 20) / 4096);
  });

  test("a reader that turns the refused read into a PlatterError, or swallows it, still fails", async () => {
    const wrapping = fakeReader(async function* (source) {
      for (;;) await source.read(0, 4096).catch(() => Promise.reject(new CorruptImageError("damaged")));
    });
    await assert.rejects(tryImage(image, wrapping, "wrapping"), /wrapping: a reader loops: .*damaged/);
    const swallowing = fakeReader(async function* (source) {
      for (let i = 0; i < 2000; i++) await source.read(0, 4096).catch(() => undefined);
    });
    await assert.rejects(tryImage(image, swallowing, "swallowing"), /swallowing: read more than its budget of 4194304 bytes, and still ended cleanly/);
  });

  test("a TypeError fails; a PlatterError is counted once per copy, whether at open or while read", async () => {
    const typeError = fakeReader(async function* () {
      throw new TypeError("undefined is not a function");
    });
    await assert.rejects(tryImage(image, typeError, "typed"), /typed: TypeError: undefined is not a function/);
    const corrupt = fakeReader(async function* () {
      throw new CorruptImageError("damaged");
    });
    assert.deepEqual(await fuzzImage(image, corrupt, { copies: 3, hot: [] }), { copies: 3, opened: 3, failed: 3, mostRead: 0 });
    const refused = async () => Promise.reject(new CorruptImageError("no superblock"));
    assert.deepEqual(await fuzzImage(image, refused, { copies: 3, hot: [] }), { copies: 3, opened: 0, failed: 3, mostRead: 0 });
  });
});
