/**
 * Shared by the zstd and xz tests: a decoded container must be the raw disk,
 * byte for byte, and everything platter reads on top of it (partition table,
 * filesystems, files) must be what it reads on the raw disk.
 */
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { existsSync, readFileSync, rmSync } from "node:fs";
import { join } from "node:path";
import { openFilesystem } from "../../src/fs/open.js";
import { probeFilesystem } from "../../src/fs/probe.js";
import { canRead } from "../../src/fs/open.js";
import { walk } from "../../src/fs/walk.js";
import { readDiskTable } from "../../src/image/disk-table.js";
import { openPartition } from "../../src/image/partition-choice.js";
import type { BlockSource } from "../../src/io/block-source.js";
import { FileSource } from "../../src/io/file-source.js";
import type { BlockSink } from "../../src/io/block-source.js";
import { pattern } from "../helpers/data.js";
import { fixture } from "../helpers/fixtures.js";

/** sha256 of a whole source, read front to back in `chunk`-byte reads. */
export async function sourceSha256(source: BlockSource, chunk = 4 << 20): Promise<string> {
  const hash = createHash("sha256");
  for (let at = 0; at < source.size; at += chunk) hash.update(await source.read(at, Math.min(chunk, source.size - at)));
  return hash.digest("hex");
}

export function fileSha256(path: string): string {
  return createHash("sha256").update(readFileSync(path)).digest("hex");
}

/** What platter reads on a disk: its table, and per readable partition every entry with its content's hash. */
async function readEverything(disk: BlockSource): Promise<unknown> {
  const table = await readDiskTable(disk);
  const partitions: Record<number, unknown> = {};
  for (const p of table.partitions) {
    if (p.container) continue;
    const source = openPartition(disk, table, p.number);
    const probe = await probeFilesystem(source);
    if (!canRead(probe)) {
      partitions[p.number] = probe?.filesystem ?? null;
      continue;
    }
    const fs = await openFilesystem(source, probe);
    const entries: unknown[] = [];
    for await (const { path, node } of walk(fs, await fs.root(), "")) {
      const { type, size, mode, mtime } = node.stat;
      let content: string | null = null;
      if (type === "file") content = createHash("sha256").update(await fs.read(node, 0, size)).digest("hex");
      else if (type === "symlink") content = await fs.readlink(node);
      entries.push({ path, type, size, mode, mtime, content });
    }
    await fs.close();
    partitions[p.number] = { filesystem: fs.type, label: fs.label, entries };
  }
  return { scheme: table.scheme, partitions: table.partitions, read: partitions };
}

/** The decoded source is the raw disk at `rawPath`, and reads as it on every level. */
export async function assertSameDisk(decoded: BlockSource, rawPath: string): Promise<void> {
  const raw = await FileSource.open(rawPath);
  try {
    assert.equal(decoded.size, raw.size, "decoded size");
    assert.equal(await sourceSha256(decoded), fileSha256(rawPath), "decoded bytes (sha256)");
    const expected = await readEverything(raw);
    assert.deepEqual(await readEverything(decoded), expected);
    // Backward and scattered reads too, not only front to back.
    for (const at of [decoded.size - 4096, 1 << 20, 0, decoded.size >> 1, 12345]) {
      assert.ok((await decoded.read(at, 4096)).equals(await raw.read(at, 4096)), `4 KiB at ${at}`);
    }
  } finally {
    await raw.close();
  }
}

/**
 * The fixture folder `name` made by `script` from the raw disk at
 * `rawPath`, rebuilt when it was made from other bytes.
 */
export async function compressedFixtures(script: string, name: string, rawPath: string): Promise<string> {
  const dir = await fixture(script, name, [rawPath]);
  const stamp = join(dir, "raw.sha256");
  if (!existsSync(stamp) || readFileSync(stamp, "utf8").trim() !== fileSha256(rawPath)) {
    rmSync(dir, { recursive: true, force: true });
    return fixture(script, name, [rawPath]);
  }
  return dir;
}

/** A disk-like image: random bytes, log text, a long zero run, and a tail that is no whole frame. */
export function mixedImage(): Buffer {
  const MiB = 1 << 20;
  const text = Buffer.from(Array.from({ length: 200_000 }, (_, i) => `line ${i}: sector ${i * 8} ok\n`).join(""));
  return Buffer.concat([pattern(5 * MiB, 7), text.subarray(0, 5 * MiB), Buffer.alloc(9 * MiB), pattern(MiB + 12345, 9)]);
}

/** Write `data` through `sink` as capture and convert do: data in chunks, zero runs as writeZeros. */
export async function writeAll(sink: BlockSink, data: Buffer, from = 0, chunk = 3 * 1048576 + 17): Promise<void> {
  for (let at = from; at < data.length; at += chunk) {
    const piece = data.subarray(at, Math.min(data.length, at + chunk));
    if (piece.every((b) => b === 0)) await sink.writeZeros(at, piece.length);
    else await sink.write(at, piece);
  }
}

