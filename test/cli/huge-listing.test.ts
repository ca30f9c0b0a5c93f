/**
 * A folder of a million entries, made on the fly by a FileSystem double (a
 * crafted squashfs packs that many into 72 KiB): `ls -l`, `ls -R --json` and
 * `extract` print and write as they read, so what they hold does not grow
 * with the folder. Each runs in a child whose heap is capped at 64 MiB (it
 * would die there if it collected the listing: a million nodes are hundreds
 * of MiB) and whose peak RSS, everything included, stays under 200 MiB.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, test } from "node:test";
import { run } from "../helpers/run.js";
import { tempDir } from "../helpers/tmp.js";

const CHILD = fileURLToPath(new URL("../helpers/huge-listing.ts", import.meta.url));
const ENTRIES = 1_000_000;
const MiB = 1 << 20;

async function inChild(mode: string, dest = ""): Promise<{ maxRss: number; stderr: string; report: Record<string, number> }> {
  const r = await run(process.execPath, ["--max-old-space-size=64", "--import", "tsx", CHILD, mode, String(ENTRIES), dest], { timeoutMs: 900_000 });
  assert.equal(r.code, 0, r.stderr.slice(-2000));
  const report = JSON.parse(r.stdout.trim().split("\n").pop() as string) as Record<string, number>;
  return { maxRss: report.maxRss, stderr: r.stderr, report };
}

describe(`a folder of ${ENTRIES} entries`, () => {
  test("ls -l streams its lines under 200 MiB, in stored order past the sort budget, with a warning", async () => {
    const { maxRss, stderr } = await inChild("ls-l");
    assert.ok(maxRss < 200 * MiB, `peak RSS ${(maxRss / MiB).toFixed(0)} MiB`);
    assert.equal(stderr, "platter: warning: /big: more than 50000 entries; listed in the order they are stored, not sorted\n");
  });

  test("ls -R --json streams its array under 200 MiB", async () => {
    const { maxRss } = await inChild("ls-R-json");
    assert.ok(maxRss < 200 * MiB, `peak RSS ${(maxRss / MiB).toFixed(0)} MiB`);
  });

  test("extract plans and walks them under 200 MiB (sockets: each skipped with a warning)", async () => {
    const { maxRss, report } = await inChild("extract", join(tempDir(), "out"));
    assert.ok(maxRss < 200 * MiB, `peak RSS ${(maxRss / MiB).toFixed(0)} MiB`);
    assert.equal(report.skipped, ENTRIES);
  });
});
