/**
 * What the gzip and bzip2 tests share: comparing a decoded image with the
 * raw one (bytes, partition table, every file of every filesystem), an
 * in-memory index cache, and peak memory measured in a child process.
 */
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { openSync, readSync, closeSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import type { ContainerContext, IndexCache } from "../../src/container/format.js";
import { canRead, openFilesystem } from "../../src/fs/open.js";
import { probeFilesystem } from "../../src/fs/probe.js";
import { walk } from "../../src/fs/walk.js";
import type { BlockSource } from "../../src/io/block-source.js";
import { FileSource } from "../../src/io/file-source.js";
import { SliceSource } from "../../src/io/slice-source.js";
import { readPartitionTable } from "../../src/partition/index.js";
import { prng } from "../helpers/fs-fuzz.js";
import { run } from "../helpers/run.js";

const opened: FileSource[] = [];

/** FileSource.open, closed by closeOpened() (each test file runs it after its tests). */
export async function openFile(path: string): Promise<FileSource> {
  const source = await FileSource.open(path);
  opened.push(source);
  return source;
}

export async function closeOpened(): Promise<void> {
  for (const source of opened.splice(0)) await source.close();
}

export function sha256(buf: Buffer): string {
  return createHash("sha256").update(buf).digest("hex");
}

export async function sourceSha256(source: BlockSource, step = 1 << 20): Promise<string> {
  const hash = createHash("sha256");
  for (let at = 0; at < source.size; at += step) hash.update(await source.read(at, Math.min(step, source.size - at)));
  return hash.digest("hex");
}

export function fileBytes(path: string, offset: number, length: number): Buffer {
  const fd = openSync(path, "r");
  try {
    const out = Buffer.alloc(length);
    readSync(fd, out, 0, length, offset);
    return out;
  } finally {
    closeSync(fd);
  }
}

/** The whole image hashes the same, and `reads` random reads (any size, across unit boundaries) give the raw bytes. */
export async function assertSameBytes(decoded: BlockSource, rawPath: string, raw: Buffer, reads = 150): Promise<void> {
  assert.equal(decoded.size, raw.length, `${rawPath}: decoded size`);
  assert.equal(await sourceSha256(decoded), sha256(raw), `${rawPath}: sha256 of the decoded image`);
  const random = prng(raw.length);
  for (let i = 0; i < reads; i++) {
    const length = 1 + Math.floor(random() * (i % 3 === 0 ? 3 << 20 : 8192));
    const offset = Math.floor(random() * (raw.length - length));
    const got = await decoded.read(offset, length);
    assert.ok(got.equals(raw.subarray(offset, offset + length)), `${rawPath}: read of ${length} bytes at ${offset}`);
  }
}

/** Partition table, and every file of every filesystem platter reads, as on the raw disk. */
export async function assertSameFilesystems(decoded: BlockSource, raw: BlockSource): Promise<number> {
  const [a, b] = [await readPartitionTable(decoded), await readPartitionTable(raw)];
  assert.deepEqual(JSON.parse(JSON.stringify(a)), JSON.parse(JSON.stringify(b)), "partition tables");
  let files = 0;
  for (const p of b.partitions) {
    if (p.container) continue;
    const [da, db] = [new SliceSource(decoded, p.offset, p.length), new SliceSource(raw, p.offset, p.length)];
    const probe = await probeFilesystem(db);
    assert.deepEqual(await probeFilesystem(da), probe, `partition ${p.number}: probe`);
    if (!canRead(probe)) continue;
    const [fa, fb] = [await openFilesystem(da), await openFilesystem(db)];
    const seen = async (fs: typeof fa) => {
      const out: string[] = [];
      for await (const e of walk(fs, await fs.root(), "/")) {
        const s = e.node.stat;
        let content = "";
        if (s.type === "file") content = sha256(await fs.read(e.node, 0, s.size));
        if (s.type === "symlink") content = await fs.readlink(e.node);
        out.push(`${e.path} ${s.type} ${s.size} ${content}`);
      }
      return out;
    };
    const [la, lb] = [await seen(fa), await seen(fb)];
    assert.deepEqual(la, lb, `partition ${p.number}: files`);
    files += lb.length;
    await fa.close();
    await fb.close();
  }
  return files;
}

/** A context with an index cache in memory and the warnings collected. */
export function memoryContext(warnings: string[] = [], cache = new Map<string, Buffer>()): ContainerContext & { cache: Map<string, Buffer> } {
  const indexCache: IndexCache = {
    load: async (name) => cache.get(name),
    save: async (name, data) => {
      cache.set(name, Buffer.from(data));
    },
  };
  return {
    cache,
    indexCache,
    openRelated: async () => {
      throw new Error("no related files here");
    },
    onWarning: (message) => warnings.push(message),
  };
}

const SRC = fileURLToPath(new URL("../../src/", import.meta.url));

/**
 * Run `body` (TypeScript, with `open`, `format` and `path` in scope: the
 * format module's export, FileSource.open, the file) in a child process and
 * return how much its peak resident memory grew while `body` ran, in MiB
 * (node, tsx and the modules loaded before it take ~80 MiB that platter's
 * CLI does not pay), and what it printed.
 */
export async function peakMemoryOf(dir: string, formatModule: string, formatName: string, path: string, body: string): Promise<{ growthMiB: number; stdout: string; stderr: string; code: number }> {
  const script = join(dir, `child-${Date.now()}-${Math.random().toString(36).slice(2)}.mts`);
  writeFileSync(
    script,
    `import { ${formatName} as format } from ${JSON.stringify(join(SRC, formatModule))};
import { FileSource } from ${JSON.stringify(join(SRC, "io/file-source.ts"))};
const path = ${JSON.stringify(path)};
const open = (p: string) => FileSource.open(p);
const before = process.resourceUsage().maxRSS;
${body}
process.stdout.write("\\ngrowth " + (process.resourceUsage().maxRSS - before) + "\\n");
`,
  );
  const r = await run(process.execPath, ["--import", "tsx", script], { timeoutMs: 300_000 });
  const m = /growth (\d+)/.exec(r.stdout);
  return { growthMiB: m ? Number(m[1]) / 1024 : Number.NaN, stdout: r.stdout, stderr: r.stderr, code: r.code };
}
