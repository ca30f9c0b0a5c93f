/**
 * .zst and .xz images: platter against the zstd and xz tools on the same
 * disk-like image (bench/out/compress-zstd-xz/disk.img, 1 GiB unless
 * BENCH_SIZE_MIB says otherwise: runs of zeros, log text and random bytes
 * of 1-16 MiB, a third each), in one run. Whole processes, in turns (A B A
 * B, bench/lib/whole-process.ts), warm page cache, median and spread:
 *  1. write: `platter convert disk.img x.zst` vs `zstd -3 -T0`, and
 *     `platter convert disk.img x.xz` vs `xz -6 -T0`; goals >= 1.0x their
 *     throughput, output within 5% of their size;
 *  2. read the whole image: `platter convert x.zst y.img` vs `zstd -d`, and
 *     `platter convert x.xz y.img` vs `xz -d -T0`, on the files platter
 *     wrote; goals >= 1.0x;
 *  3. random access: 10,000 random 4 KiB reads, one after another, through
 *     openImage on the platter-written .zst and .xz, in this process;
 *     goal >= 1,000 reads/s each;
 *  4. platter's peak memory (GNU time's max RSS) in each, for the record.
 * BENCH_RUNS (default 3) sets the runs per command; the xz writes take
 * minutes each at -6.
 */
import { spawnSync } from "node:child_process";
import { randomFillSync } from "node:crypto";
import { closeSync, existsSync, mkdirSync, openSync, rmSync, statSync, writeSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { openImage } from "../src/image/open-image.js";
import { compareInTurns, report, type Command } from "./lib/whole-process.js";

const ROOT = fileURLToPath(new URL("..", import.meta.url));
const OUT = join(ROOT, "bench", "out", "compress-zstd-xz");
const CLI = join(ROOT, "dist", "cli", "main.js");
const MiB = 1 << 20;
const SIZE = Number(process.env.BENCH_SIZE_MIB ?? 1024) * MiB;
const RUNS = Number(process.env.BENCH_RUNS ?? 3);
const RANDOM_READS = 10_000;

/** A deterministic disk-like image: runs of 1-16 MiB, a third zeros, a third log text, a third random bytes. */
function makeImage(path: string): void {
  const fd = openSync(path, "w");
  let x = 0x9e3779b9;
  const next = () => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return (x >>> 0) / 2 ** 32;
  };
  const words = "kernel sector inode mount device partition block journal error warning info debug write read flush".split(" ");
  let line = 0;
  for (let at = 0; at < SIZE; ) {
    const run = Math.min(SIZE - at, (1 + Math.floor(next() * 16)) * MiB);
    const kind = next();
    let buf: Buffer;
    if (kind < 1 / 3) buf = Buffer.alloc(run);
    else if (kind < 2 / 3) {
      const lines: string[] = [];
      let n = 0;
      while (n < run) {
        const w = () => words[Math.floor(next() * words.length)] as string;
        const l = `2026-11-30T12:${String(line % 60).padStart(2, "0")}:${String((line * 7) % 60).padStart(2, "0")} host${line % 13} ${w()} ${w()} pid=${Math.floor(next() * 65536)} ${w()} value=${(next() * 1000).toFixed(3)}\n`;
        lines.push(l);
        n += l.length;
        line++;
      }
      buf = Buffer.from(lines.join("")).subarray(0, run);
    } else buf = randomFillSync(Buffer.allocUnsafe(run));
    writeSync(fd, buf);
    at += run;
  }
  closeSync(fd);
}

function have(tool: string): boolean {
  return spawnSync("bash", ["-c", `command -v ${tool}`], { stdio: "ignore" }).status === 0;
}

function size(path: string): number {
  return statSync(path).size;
}

/** Peak resident memory of one run of `argv` (GNU time), in MiB; undefined without GNU time. */
function peakMiB(argv: string[], before: () => void): number | undefined {
  if (!existsSync("/usr/bin/time")) return undefined;
  before();
  const r = spawnSync("/usr/bin/time", ["-f", "@@ %M", ...argv], { encoding: "utf8", stdio: ["ignore", "ignore", "pipe"] });
  const m = /@@ (\d+)\s*$/.exec(r.stderr ?? "");
  return m ? Math.round(Number(m[1]) / 1024) : undefined;
}

const rm = (...paths: string[]) => () => {
  for (const p of paths) rmSync(p, { force: true });
};

async function randomReads(path: string): Promise<{ perSecond: number; seconds: number }> {
  const image = await openImage(path, { indexCache: false });
  try {
    const source = image.source;
    let x = 12345;
    const started = process.hrtime.bigint();
    for (let i = 0; i < RANDOM_READS; i++) {
      x = (Math.imul(x, 1103515245) + 12345) >>> 0;
      const at = (x % Math.floor(source.size / 4096)) * 4096;
      await source.read(at, 4096);
    }
    const seconds = Number(process.hrtime.bigint() - started) / 1e9;
    return { perSecond: RANDOM_READS / seconds, seconds };
  } finally {
    await image.close();
  }
}

export default async function bench(): Promise<void> {
  if (!have("zstd") || !have("xz")) {
    console.log("compress-zstd-xz: SKIPPED: needs zstd and xz");
    return;
  }
  mkdirSync(OUT, { recursive: true });
  const image = join(OUT, "disk.img");
  if (!existsSync(image) || size(image) !== SIZE) makeImage(image);
  const mib = (SIZE / MiB).toFixed(0);
  console.log(`compress-zstd-xz: ${mib} MiB disk-like image (zeros, text, random in 1-16 MiB runs), ${RUNS} runs each, ${process.env.BENCH_SIZE_MIB ? "BENCH_SIZE_MIB set" : "default size"}`);
  const oursZst = join(OUT, "platter.zst");
  const refZst = join(OUT, "zstd.zst");
  const oursXz = join(OUT, "platter.xz");
  const refXz = join(OUT, "xz.xz");
  const back = join(OUT, "back.img");

  for (const [name, ours, ref, reference] of [
    ["zstd", oursZst, refZst, { label: "zstd -3 -T0", argv: ["zstd", "-q", "-f", "-3", "-T0", image, "-o", refZst] }],
    ["xz", oursXz, refXz, { label: "xz -6 -T0", argv: [], shell: `xz -6 -T0 -c '${image}' > '${refXz}'` }],
  ] as Array<[string, string, string, Command]>) {
    const platter: Command = { label: `platter convert (${name})`, argv: [process.execPath, CLI, "convert", image, ours, "--force"], setup: rm(ours) };
    const c = compareInTurns(platter, { ...reference, setup: rm(ref) }, { runs: RUNS });
    const sizes = `output ${(size(ours) / MiB).toFixed(1)} MiB vs ${(size(ref) / MiB).toFixed(1)} MiB (${((size(ours) / size(ref) - 1) * 100).toFixed(1)}%)`;
    report(`write ${name}`, c, `${(SIZE / MiB / c.a.median).toFixed(0)} vs ${(SIZE / MiB / c.b.median).toFixed(0)} MiB/s, ${sizes}; platter peak ${peakMiB(platter.argv, rm(ours)) ?? "?"} MiB`);
  }

  for (const [name, ours, reference] of [
    ["zstd", oursZst, { label: "zstd -d", argv: ["zstd", "-q", "-d", "-f", oursZst, "-o", back] }],
    ["xz", oursXz, { label: "xz -d -T0", argv: [], shell: `xz -d -T0 -c '${oursXz}' > '${back}'` }],
  ] as Array<[string, string, Command]>) {
    const platter: Command = { label: `platter convert (${name} to raw)`, argv: [process.execPath, CLI, "convert", ours, back, "--force"], setup: rm(back) };
    const c = compareInTurns(platter, { ...reference, setup: rm(back) }, { runs: RUNS });
    report(`read ${name} (platter's file)`, c, `${(SIZE / MiB / c.a.median).toFixed(0)} vs ${(SIZE / MiB / c.b.median).toFixed(0)} MiB/s; platter peak ${peakMiB(platter.argv, rm(back)) ?? "?"} MiB`);
  }
  rmSync(back, { force: true });

  for (const [name, path] of [
    ["zstd", oursZst],
    ["xz", oursXz],
  ]) {
    const r = await randomReads(path as string);
    console.log(`random reads ${name}: ${RANDOM_READS} x 4 KiB, one after another, in ${r.seconds.toFixed(2)} s: ${r.perSecond.toFixed(0)} reads/s (goal 1000)`);
  }
}
