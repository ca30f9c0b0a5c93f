import assert from "node:assert/strict";
import { existsSync, readFileSync } from "node:fs";
import { test } from "node:test";
import { allocAligned, allocHuge } from "../../src/io/aligned.js";
import { HUGE_PAGE, memoryAddress } from "../../src/io/syscalls.js";

const THP = "/sys/kernel/mm/transparent_hugepage/enabled";

/** The VmFlags of the mapping that holds `address`, from /proc/self/smaps. */
function vmFlagsAt(address: number): string[] {
  let inside = false;
  for (const line of readFileSync("/proc/self/smaps", "utf8").split("\n")) {
    const range = /^([0-9a-f]+)-([0-9a-f]+) /.exec(line);
    if (range) inside = parseInt(range[1] as string, 16) <= address && address < parseInt(range[2] as string, 16);
    else if (inside && line.startsWith("VmFlags:")) return line.slice(8).trim().split(/\s+/);
  }
  throw new Error(`no mapping holds 0x${address.toString(16)}`);
}

test("large I/O buffers ask for huge pages (MADV_HUGEPAGE: VmFlags hg) before their first touch", { skip: existsSync(THP) ? false : `SKIPPED: this kernel has no transparent huge pages (${THP} missing)` }, () => {
  for (const [name, buf] of [["allocHuge", allocHuge(8 << 20)], ["allocAligned", allocAligned(8 << 20)]] as const) {
    const address = memoryAddress(buf);
    assert.ok(address !== undefined, "the FFI loads here");
    const firstHuge = Math.ceil(address / HUGE_PAGE) * HUGE_PAGE;
    assert.ok(firstHuge + HUGE_PAGE <= address + buf.length);
    assert.ok(vmFlagsAt(firstHuge).includes("hg"), `${name}: the 2 MiB-aligned part is advised`);
    buf.fill(7);
    assert.equal(buf[buf.length - 1], 7);
  }
  assert.equal(allocHuge(100).length, 100, "small buffers are plain ones");
});
