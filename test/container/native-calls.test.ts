/**
 * Native codec calls (koffi's async calls into libzstd, libz, liblzma,
 * libbz2) made faster than they finish: koffi throws once 256 are running
 * or queued, so platter queues the rest itself, and every call completes.
 */
import assert from "node:assert/strict";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, test } from "node:test";
import { compressBound, compressFrame } from "../../src/container/zstd/libzstd.js";
import { needs } from "../helpers/env.js";
import { run } from "../helpers/run.js";
import { tempDir } from "../helpers/tmp.js";

describe("native calls made all at once", { skip: needs("zstd") }, () => {
  test("300 zstd frames compressed at once all resolve, and zstd -d decodes them to the input", async () => {
    const pieces = Array.from({ length: 300 }, (_, i) => Buffer.from(`frame ${i}: ${"sector ok ".repeat(50 + i)}\n`));
    const frames = await Promise.all(
      pieces.map(async (piece) => {
        const out = Buffer.allocUnsafe(compressBound(piece.length));
        return out.subarray(0, await compressFrame(piece, out, { level: 3, checksum: true }));
      }),
    );
    const path = join(tempDir(), "frames.zst");
    writeFileSync(path, Buffer.concat(frames));
    const decoded = await run("zstd", ["-dc", path]);
    assert.equal(decoded.code, 0, decoded.stderr);
    assert.equal(decoded.stdout, Buffer.concat(pieces).toString());
  });
});
