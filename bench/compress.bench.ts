/**
 * npm run bench compress: the rows of the compressed-images issue, platter
 * against the reference tools on the same disk-like image
 * (bench/out/compress/disk.img, 1 GiB unless BENCH_SIZE_MIB says otherwise:
 * runs of 1-16 MiB, a third zeros, a third log text, a third random bytes,
 * deterministic). Every timing is a whole process (node start-up included),
 * the two commands in turns (A B A B, bench/lib/whole-process.ts; BENCH_RUNS
 * each, default 3), warm page cache, every output written to a file:
 *  1. write: `platter convert disk.img x.EXT` vs `pigz -6` and `gzip -6`
 *     (.gz), `zstd -3 -T0` (.zst), `xz -6 -T0` (.xz), `pbzip2 -9` (.bz2);
 *     goals >= 1.0x (gzip -6: >= 1.8x), output within 5% of their size;
 *  2. read: `platter convert x.EXT back.img` vs `pigz -d`, `zstd -d`,
 *     `xz -d -T0`, `pbzip2 -d` on the same platter-written file; goals >= 1.0x;
 *  3. random access: 10,000 random 4 KiB reads one after another through
 *     openImage on each platter-written file, in this process; goal >= 1,000/s;
 *  4. platter's peak memory (GNU time's max RSS) writing and reading each, one
 *     extra run; goal < 200 MiB.
 * Ratios above 1 mean platter is faster.
 *
 * convert ends with an fdatasync of DEST before it renames it into place
 * (after a crash, DEST is complete or absent), so every reference command
 * ends with `sync -d` of its output too: both are timed until the bytes are
 * on the disk. zstd -d and xz -d write zero runs as holes (their default for
 * a file); platter's rows for them read with --sparse, which does the same.
 */
import { spawnSync } from "node:child_process";
import { randomFillSync } from "node:crypto";
import { closeSync, existsSync, mkdirSync, openSync, rmSync, statSync, writeSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { openImage } from "../src/image/open-image.js";
import { compareInTurns, report, type Command } from "./lib/whole-process.js";

const ROOT = fileURLToPath(new URL("..", import.meta.url));
const OUT = join(ROOT, "bench", "out", "compress");
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
      for (let n = 0; n < run; line++) {
        const w = () => words[Math.floor(next() * words.length)] as string;
        const l = `2026-11-30T12:${String(line % 60).padStart(2, "0")}:${String((line * 7) % 60).padStart(2, "0")} host${line % 13} ${w()} ${w()} pid=${Math.floor(next() * 65536)} ${w()} value=${(next() * 1000).toFixed(3)}\n`;
        lines.push(l);
        n += l.length;
      }
      buf = Buffer.from(lines.join("")).subarray(0, run);
    } else buf = randomFillSync(Buffer.allocUnsafe(run));
    writeSync(fd, buf);
    at += run;
  }
  closeSync(fd);
}

const have = (tool: string) => spawnSync("bash", ["-c", `command -v ${tool}`], { stdio: "ignore" }).status === 0;
const size = (path: string) => statSync(path).size;
const mibps = (seconds: number) => `${(SIZE / MiB / seconds).toFixed(SIZE / MiB / seconds < 10 ? 1 : 0)} MiB/s`;
const rm = (path: string) => () => rmSync(path, { force: true });

/** Peak resident memory of one run (GNU time), in MiB. */
function peakMiB(command: Command): string {
  if (!existsSync("/usr/bin/time")) return "?";
  command.setup?.();
  const r = spawnSync("/usr/bin/time", ["-f", "@@ %M", ...command.argv], { encoding: "utf8", stdio: ["ignore", "ignore", "pipe"] });
  const m = /@@ (\d+)\s*$/.exec(r.stderr ?? "");
  return m ? `${Math.round(Number(m[1]) / 1024)} MiB` : "?";
}

async function randomReads(path: string): Promise<number> {
  const image = await openImage(path, { indexCache: false });
  try {
    const source = image.source;
    let x = 12345;
    const started = process.hrtime.bigint();
    for (let i = 0; i < RANDOM_READS; i++) {
      x = (Math.imul(x, 1103515245) + 12345) >>> 0;
      await source.read((x % Math.floor(source.size / 4096)) * 4096, 4096);
    }
    return RANDOM_READS / (Number(process.hrtime.bigint() - started) / 1e9);
  } finally {
    await image.close();
  }
}

interface Row {
  ext: string;
  /** Reference writers: label and shell command writing `out`. */
  writers: Array<{ label: string; shell: (input: string, out: string) => string; goal: number }>;
  /** The reference reader; `sparse`: it writes zero runs as holes, so platter reads with --sparse. */
  reader: { label: string; shell: (input: string, out: string) => string; sparse?: boolean };
  tools: string[];
}

/** The reference command, then its output's data on the disk, as convert's fdatasync does. */
const synced = (command: string, out: string) => `${command} && sync -d '${out}'`;

const ROWS: Row[] = [
  {
    ext: "gz",
    writers: [
      { label: "pigz -6", shell: (i, o) => `pigz -6 -c '${i}' > '${o}'`, goal: 1.0 },
      { label: "gzip -6", shell: (i, o) => `gzip -6 -c '${i}' > '${o}'`, goal: 1.8 },
    ],
    reader: { label: "pigz -d", shell: (i, o) => `pigz -d -c '${i}' > '${o}'` },
    tools: ["pigz", "gzip"],
  },
  {
    ext: "zst",
    writers: [{ label: "zstd -3 -T0", shell: (i, o) => `zstd -q -f -3 -T0 '${i}' -o '${o}'`, goal: 1.0 }],
    reader: { label: "zstd -d", shell: (i, o) => `zstd -q -d -f '${i}' -o '${o}'`, sparse: true },
    tools: ["zstd"],
  },
  {
    ext: "xz",
    writers: [{ label: "xz -6 -T0", shell: (i, o) => `xz -6 -T0 -c '${i}' > '${o}'`, goal: 1.0 }],
    reader: { label: "xz -d -T0", shell: (i, o) => `xz -d -T0 -c '${i}' > '${o}'`, sparse: true },
    tools: ["xz"],
  },
  {
    ext: "bz2",
    writers: [{ label: "pbzip2 -9", shell: (i, o) => `pbzip2 -9 -c '${i}' > '${o}'`, goal: 1.0 }],
    reader: { label: "pbzip2 -d", shell: (i, o) => `pbzip2 -d -c '${i}' > '${o}'` },
    tools: ["pbzip2"],
  },
];

export default async function bench(): Promise<void> {
  mkdirSync(OUT, { recursive: true });
  const image = join(OUT, "disk.img");
  if (!existsSync(image) || size(image) !== SIZE) makeImage(image);
  const only = process.env.BENCH_FORMATS?.split(",");
  console.log(`compress: ${SIZE / MiB} MiB disk-like image (zeros, log text, random bytes in 1-16 MiB runs), ${RUNS} runs each in turns`);
  const back = join(OUT, "back.img");
  for (const row of ROWS.filter((r) => !only || only.includes(r.ext))) {
    const missing = row.tools.filter((t) => !have(t));
    if (missing.length) {
      console.log(`compress ${row.ext}: SKIPPED: needs ${missing.join(", ")}`);
      continue;
    }
    const ours = join(OUT, `platter.${row.ext}`);
    const write: Command = { label: `platter convert (.${row.ext})`, argv: [process.execPath, CLI, "convert", image, ours, "--force"], setup: rm(ours) };
    for (const w of row.writers) {
      const theirs = join(OUT, `reference.${row.ext}`);
      const c = compareInTurns(write, { label: `${w.label} + sync -d`, argv: [], shell: synced(w.shell(image, theirs), theirs), setup: rm(theirs) }, { runs: RUNS });
      const sizes = `size ${(size(ours) / MiB).toFixed(1)} vs ${(size(theirs) / MiB).toFixed(1)} MiB (${((size(ours) / size(theirs) - 1) * 100).toFixed(1)}%)`;
      report(`write .${row.ext}`, c, `${mibps(c.a.median)} vs ${mibps(c.b.median)}, goal >= ${w.goal}x: ${c.ratio >= w.goal ? "met" : "NOT met"}; ${sizes}`);
      rmSync(theirs, { force: true });
    }
    const sparse = row.reader.sparse ? ["--sparse"] : [];
    const read: Command = { label: `platter convert ${sparse.join(" ")} (.${row.ext} to raw)`, argv: [process.execPath, CLI, "convert", ours, back, "--force", ...sparse], setup: rm(back) };
    const r = compareInTurns(read, { label: `${row.reader.label} + sync -d`, argv: [], shell: synced(row.reader.shell(ours, back), back), setup: rm(back) }, { runs: RUNS });
    report(`read .${row.ext} (platter's file)`, r, `${mibps(r.a.median)} vs ${mibps(r.b.median)}, goal >= 1.0x: ${r.ratio >= 1 ? "met" : "NOT met"}`);
    const perSecond = await randomReads(ours);
    console.log(`random 4 KiB reads .${row.ext}: ${perSecond.toFixed(0)}/s (${RANDOM_READS} one after another, openImage in this process; goal >= 1000: ${perSecond >= 1000 ? "met" : "NOT met"})`);
    console.log(`platter peak memory .${row.ext}: write ${peakMiB(write)}, read ${peakMiB(read)} (GNU time max RSS; goal < 200 MiB)`);
    rmSync(back, { force: true });
  }
}
