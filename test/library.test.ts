import assert from "node:assert/strict";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { test } from "node:test";
import * as platter from "../src/index.js";
import { needs } from "./helpers/env.js";
import { sh } from "./helpers/run.js";
import { tempDir } from "./helpers/tmp.js";

const EXAMPLE = fileURLToPath(new URL("../examples/disk.img", import.meta.url));

test("the library alone reads the example disk as sfdisk and debugfs do", { skip: needs("sfdisk", "debugfs") }, async () => {
  const disk = await platter.openSource(EXAMPLE);
  try {
    const table = await platter.readPartitionTable(disk);
    const sfdisk = JSON.parse(await sh(`sfdisk --json ${EXAMPLE}`)).partitiontable;
    assert.equal(table.scheme, "mbr");
    assert.deepEqual(
      table.partitions.map((p) => [p.start, p.sectors]),
      sfdisk.partitions.map((p: { start: number; size: number }) => [p.start, p.size]),
    );
    const fs = await platter.openFilesystem(platter.openPartition(disk, table, 2));
    const { node } = await platter.resolvePath(fs, "/etc/hostname");
    const text = (await fs.read(node, 0, node.stat.size)).toString();
    const part2 = join(tempDir(), "p2.img");
    await sh(`dd if=${EXAMPLE} of=${part2} bs=512 skip=4096 count=4096 status=none`);
    assert.equal(text, await sh(`debugfs -R 'cat /etc/hostname' ${part2} 2>/dev/null`));
    await fs.close();
  } finally {
    await disk.close();
  }
});

test("the public API holds what a library user needs, and no test doubles", () => {
  for (const name of ["FaultySource", "CountingSource"]) assert.equal(name in platter, false, `${name} is a test double`);
  // fs.list() is a stream: listAll/sortedList/walk are how a caller reads it.
  for (const fn of [platter.listAll, platter.sortedList, platter.walk]) assert.equal(typeof fn, "function");
  // Names keep bytes that are not UTF-8 as escapes: nameBytes gives the exact bytes back, escapeName shows them as ls -b does.
  assert.deepEqual(platter.nameBytes("bad\udcff.txt"), Buffer.from("bad\xff.txt", "latin1"));
  assert.equal(platter.escapeName("bad\udcff.txt"), "bad\\377.txt");
});
