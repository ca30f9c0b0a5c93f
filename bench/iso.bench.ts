/**
 * `platter iso` against `genisoimage -R -J` and `xorriso -as mkisofs -R -J`
 * on the same tree (3000 files in 30 folders, about 1 GiB), same run, warm
 * cache, whole processes in turns (bench/lib/whole-process.ts: BENCH_RUNS
 * runs each, default 5, median and spread); goal: no slower than
 * genisoimage. Then the peak
 * memory (max RSS, GNU time) of building an image of 100,000 small files;
 * goal: under 200 MiB.
 * Needs genisoimage and xorriso; the trees are built once into bench/out/.
 */
import { execFileSync, spawnSync } from "node:child_process";
import { existsSync, mkdirSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { compareInTurns, report, type Command } from "./lib/whole-process.js";

const ROOT = fileURLToPath(new URL("..", import.meta.url));
const OUT = join(ROOT, "bench", "out");
const TREE = join(OUT, "iso-tree-1g");
const MANY = join(OUT, "iso-tree-100k");
const CLI = join(ROOT, "dist", "cli", "main.js");
const RUNS = Number(process.env.BENCH_RUNS ?? 5);

function sh(command: string): string {
  return execFileSync("bash", ["-c", command], { encoding: "utf8", stdio: ["ignore", "pipe", "inherit"] });
}

/** 3000 files, 4 KiB .. ~700 KiB, cut from one pseudo-random pool, plus two 64 MiB files: about 1 GiB. */
function buildTree(): void {
  if (existsSync(join(TREE, ".done"))) return;
  rmSync(TREE, { recursive: true, force: true });
  const pool = Buffer.alloc(8 << 20);
  let x = 0x2545f491;
  for (let i = 0; i < pool.length; i += 4) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    pool.writeInt32LE(x | 0, i);
  }
  for (let i = 0; i < 3000; i++) {
    const dir = join(TREE, `dir${String(i % 30).padStart(2, "0")}`);
    mkdirSync(dir, { recursive: true });
    const size = ((i * 7919) % 170) * 4096 + 4096 + (i % 13);
    const start = (i * 104729) % (pool.length - size);
    writeFileSync(join(dir, `file-${String(i).padStart(4, "0")}.dat`), pool.subarray(start, start + size));
  }
  for (const n of [1, 2]) {
    const big = Buffer.alloc(64 << 20);
    for (let o = 0; o < big.length; o += pool.length) pool.copy(big, o, (n * 4096) % pool.length);
    writeFileSync(join(TREE, `big-${n}.bin`), big);
  }
  writeFileSync(join(TREE, ".done"), "");
}

/** 1000 folders of 100 files of a few bytes: the memory test. */
function buildMany(): void {
  if (existsSync(join(MANY, ".done"))) return;
  rmSync(MANY, { recursive: true, force: true });
  for (let d = 0; d < 1000; d++) {
    const dir = join(MANY, `folder-${String(d).padStart(4, "0")}`);
    mkdirSync(dir, { recursive: true });
    for (let f = 0; f < 100; f++) writeFileSync(join(dir, `a-fairly-long-file-name-number-${f}.txt`), `${d}/${f}\n`);
  }
  writeFileSync(join(MANY, ".done"), "");
}

/** Peak resident memory in MiB of one run (GNU time's %M is KiB). */
function peakMemory(label: string, command: string): number {
  const r = spawnSync("/usr/bin/time", ["-f", "%M", "bash", "-c", `${command} >/dev/null`], { encoding: "utf8" });
  if (r.status !== 0) throw new Error(`${label} failed: ${r.stderr}`);
  const mib = Number(r.stderr.trim().split("\n").pop()) / 1024;
  console.log(`${label.padEnd(34)} ${mib.toFixed(0)} MiB max RSS`);
  return mib;
}

export default async function isoBench(): Promise<void> {
  console.log("\n== iso: build an image of ~1 GiB in 3000 files: platter vs genisoimage vs xorriso; memory for 100,000 files");
  {
    for (const tool of ["genisoimage", "xorriso"]) {
      if (spawnSync("sh", ["-c", `command -v ${tool}`]).status !== 0) {
        console.log(`skipped: ${tool} is not installed`);
        return;
      }
    }
    mkdirSync(OUT, { recursive: true });
    buildTree();
    buildMany();
    const iso = join(OUT, "bench.iso");
    // Before each run: the last image gone and synced (its writeback must not land in the next run), the tree cached again.
    const setup = () => {
      rmSync(iso, { force: true });
      sh(`sync; find ${TREE} -type f -exec cat {} + > /dev/null`);
    };
    const platter: Command = { label: "platter iso", argv: [process.execPath, CLI, "iso", TREE, "-o", iso], setup };
    const mkisofs = (tool: string[]): Command => ({ label: tool.join(" "), argv: [...tool, "-quiet", "-R", "-J", "-joliet-long", "-o", iso, TREE], setup });
    const geniso = compareInTurns(platter, mkisofs(["genisoimage"]), { runs: RUNS });
    report("iso of 3000 files / 1 GiB, warm", geniso);
    console.log(`platter / genisoimage: ${(1 / geniso.ratio).toFixed(2)}x the time (goal <= 1.0: ${geniso.ratio >= 1 ? "met" : "NOT met"})`);
    report("iso of 3000 files / 1 GiB, warm", compareInTurns(platter, mkisofs(["xorriso", "-as", "mkisofs"]), { runs: RUNS }), "(for the record)");
    const files = Number(sh(`find ${MANY} -type f | wc -l`).trim());
    const mine = peakMemory(`platter iso, ${files} files`, `node ${CLI} iso ${MANY} -o ${iso}`);
    peakMemory(`genisoimage, ${files} files`, `genisoimage -quiet -R -J -joliet-long -o ${iso} ${MANY}`);
    console.log(`platter peak memory for ${files} files: ${mine.toFixed(0)} MiB (goal < 200 MiB)`);
    rmSync(iso, { force: true });
  }
}
