/**
 * Moving a GPT to the end of a bigger (or smaller) disk gives the very bytes
 * `sgdisk -e` writes: protective MBR, primary header, backup entries and
 * header. Images made by sgdisk, in plain files: no root needed.
 */
import assert from "node:assert/strict";
import { closeSync, openSync, readFileSync, writeSync } from "node:fs";
import { join } from "node:path";
import { describe, test } from "node:test";
import { decodeGptHeader } from "../../src/partition/gpt.js";
import { relocateGpt } from "../../src/restore/gpt-relocation.js";
import { needs } from "../helpers/env.js";
import { run, sh } from "../helpers/run.js";
import { tempDir } from "../helpers/tmp.js";

const MiB = 1 << 20;

function gptOf(path: string, sectorSize = 512) {
  const bytes = readFileSync(path);
  const primaryHeader = bytes.subarray(sectorSize, 2 * sectorSize);
  const header = decodeGptHeader(primaryHeader);
  return {
    sectorSize,
    mbr: bytes.subarray(0, sectorSize),
    primaryHeader,
    entries: bytes.subarray(header.entriesLba * sectorSize, header.entriesLba * sectorSize + header.entryCount * header.entrySize),
    lastPartitionLba: 22527,
  };
}

function applyPatches(path: string, patches: Array<{ offset: number; data: Buffer }>): void {
  const fd = openSync(path, "r+");
  try {
    for (const p of patches) writeSync(fd, p.data, 0, p.data.length, p.offset);
  } finally {
    closeSync(fd);
  }
}

describe("GPT relocation matches sgdisk -e", { skip: needs("sgdisk", "cmp") }, () => {
  for (const targetMiB of [40, 12]) {
    test(`a 16 MiB sgdisk image on a ${targetMiB} MiB disk: byte for byte what sgdisk -e writes, and sgdisk -v is clean`, async () => {
      const dir = tempDir();
      const img = join(dir, "gpt.img");
      await sh(`truncate -s 16M ${img} && sgdisk -n1:2048:+4M -t1:ef00 -n2:0:+6M -t2:8300 ${img} >/dev/null 2>&1`);
      const [bySgdisk, byPlatter] = [join(dir, "sgdisk.img"), join(dir, "platter.img")];
      await sh(`cp ${img} ${bySgdisk} && truncate -s ${targetMiB}M ${bySgdisk} && sgdisk -e ${bySgdisk} >/dev/null 2>&1`);
      await sh(`cp ${img} ${byPlatter} && truncate -s ${targetMiB}M ${byPlatter}`);
      const relocation = relocateGpt(gptOf(img), (targetMiB * MiB) / 512);
      assert.ok("patches" in relocation, JSON.stringify(relocation));
      applyPatches(byPlatter, relocation.patches);
      await sh(`cmp ${bySgdisk} ${byPlatter}`);
      const verify = await run("sgdisk", ["-v", byPlatter]);
      assert.match(verify.stdout, /No problems found/, verify.stdout + verify.stderr);
    });
  }

  test("a disk too small for the last partition plus the backup GPT: a problem, no patches", async () => {
    const dir = tempDir();
    const img = join(dir, "gpt.img");
    await sh(`truncate -s 16M ${img} && sgdisk -n1:2048:+4M -t1:ef00 -n2:0:+6M -t2:8300 ${img} >/dev/null 2>&1`);
    // Partition 2 ends at LBA 22527; 33 sectors of backup GPT need 22561 sectors at least.
    const relocation = relocateGpt(gptOf(img), 22560);
    assert.deepEqual(relocation, { problem: "a partition ends at LBA 22527, past the target's last usable LBA 22526" });
    assert.ok("patches" in relocateGpt(gptOf(img), 22561));
  });
});
