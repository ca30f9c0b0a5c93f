/**
 * `platter capture` against `dd bs=1M` and GNU `ddrescue` on the same input,
 * in the same run, page cache dropped before every run (when root) unless
 * a case says warm; the table's rows below the first case are best of a few
 * runs under GNU time (wall time and peak RSS), one process each:
 *  1. a 1 GiB file -> file, whole processes in turns with `dd bs=1M`
 *     (bench/lib/whole-process.ts: BENCH_RUNS runs each, default 5, median
 *     and spread), cold (cache dropped before each run) and warm (SOURCE
 *     cached); goal >= 1.0x dd both ways. Hashing is bench/hash.bench.ts;
 *  2. a sparse 20 GiB file holding 200 MiB: time proportional to the data
 *     (compared with capturing the 200 MiB alone);
 *  3. peak resident memory (GNU time's max RSS) under 150 MiB in every run;
 *  4. the good areas of a failing device (badsectorfs + loop, root): faster
 *     than `ddrescue -d` (both stopping after the copying phases), and the
 *     whole rescue, for the record.
 * Inputs live in bench/out/ and are deleted at the end.
 */
import { execFileSync, spawnSync } from "node:child_process";
import { existsSync, mkdirSync, rmSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { compareInTurns, report as reportComparison, type Command } from "./lib/whole-process.js";

const ROOT = fileURLToPath(new URL("..", import.meta.url));
const OUT = join(ROOT, "bench", "out", "capture");
const CLI = join(ROOT, "dist", "cli", "main.js");
const DEVICE_SCRIPT = join(ROOT, "test", "fixtures", "badsector-device.sh");
const GiB = 1 << 30;
const MiB = 1 << 20;
const RSS_LIMIT_KIB = 150 * 1024;
const isRoot = process.getuid?.() === 0;
const RUNS = Number(process.env.BENCH_RUNS ?? 5);

function sh(command: string): string {
  return execFileSync("bash", ["-c", command], { encoding: "utf8", stdio: ["ignore", "pipe", "inherit"] });
}

function have(tool: string): boolean {
  return spawnSync("bash", ["-c", `command -v ${tool}`], { stdio: "ignore" }).status === 0;
}

function dropCaches(): void {
  if (isRoot) sh("sync; echo 3 > /proc/sys/vm/drop_caches");
}

interface Timing {
  seconds: number;
  maxRssKiB: number;
}

/** Run a command under GNU time: wall seconds and peak RSS. */
function timed(cmd: string, args: string[]): Timing {
  const r = spawnSync("/usr/bin/time", ["-f", "@@ %e %M", cmd, ...args], { encoding: "utf8", stdio: ["ignore", "ignore", "pipe"] });
  const m = /@@ ([\d.]+) (\d+)\s*$/.exec(r.stderr ?? "");
  if (r.status !== 0 && r.status !== 3) throw new Error(`${cmd} ${args.join(" ")} failed (${r.status}): ${r.stderr}`);
  if (!m) throw new Error(`no timing from ${cmd}: ${r.stderr}`);
  return { seconds: Number(m[1]), maxRssKiB: Number(m[2]) };
}

/** Best of `rounds` cold-cache runs; `prepare` runs before each (delete the output). */
function best(rounds: number, prepare: () => void, cmd: string, args: string[]): Timing {
  let result: Timing | undefined;
  let rss = 0;
  for (let i = 0; i < rounds; i++) {
    prepare();
    dropCaches();
    const t = timed(cmd, args);
    rss = Math.max(rss, t.maxRssKiB);
    if (!result || t.seconds < result.seconds) result = t;
  }
  return { seconds: (result as Timing).seconds, maxRssKiB: rss };
}

const rows: string[][] = [];
const verdicts: string[] = [];
/** The whole-process comparison lines, printed again with the table. */
const wholeProcess: string[] = [];

function report(what: string, tool: string, bytes: number, t: Timing): void {
  const rate = bytes / Math.max(t.seconds, 0.001) / MiB;
  rows.push([what, tool, t.seconds.toFixed(2), rate.toFixed(0), (t.maxRssKiB / 1024).toFixed(0)]);
  if (tool.startsWith("platter")) {
    verdicts.push(`${t.maxRssKiB < RSS_LIMIT_KIB ? "PASS" : "FAIL"} ${what}, ${tool}: peak RSS ${(t.maxRssKiB / 1024).toFixed(0)} MiB (goal < 150 MiB)`);
  }
}

function ratio(label: string, value: number, goal: number, higherIsBetter = true): void {
  const ok = higherIsBetter ? value >= goal : value <= goal;
  verdicts.push(`${ok ? "PASS" : "FAIL"} ${label}: ${value.toFixed(2)}x (goal ${higherIsBetter ? ">=" : "<="} ${goal}x)`);
}

function printTable(): void {
  const header = ["case", "tool", "seconds", "MiB/s", "max RSS MiB"];
  const all = [header, ...rows];
  const widths = header.map((_, i) => Math.max(...all.map((r) => r[i].length)));
  for (const r of all) console.log(r.map((c, i) => (i >= 2 ? c.padStart(widths[i]) : c.padEnd(widths[i]))).join("  "));
  console.log("");
  for (const line of wholeProcess) console.log(line);
  for (const v of verdicts) console.log(v);
}

function fileToFile(): void {
  const src = join(OUT, "src-1g.img");
  const dst = join(OUT, "dst.img");
  sh(`head -c ${GiB} /dev/urandom > ${src}`);
  const clean = () => rmSync(dst, { force: true });
  // Warm: SOURCE read into the cache again before each run (other work on the machine may have dropped it),
  // and the last run's DEST off the disk queue (sync): a run that starts while the previous one's gigabyte is
  // still being written back is slowed by it (dd: 0.18-0.73 s without the sync, 0.18-0.24 s with it).
  const warmUp = () => (clean(), sh(`cat ${src} > /dev/null; sync`));
  // Whole processes in turns: cold (cache dropped before each run), then warm (SOURCE cached, DEST removed).
  for (const cold of [true, false]) {
    const setup = cold ? clean : warmUp;
    const dd: Command = { label: "dd bs=1M", argv: ["dd", `if=${src}`, `of=${dst}`, "bs=1M", "status=none"], setup };
    const platter: Command = { label: "platter capture", argv: [process.execPath, CLI, "capture", src, dst, "-q"], setup };
    const c = compareInTurns(platter, dd, { runs: RUNS, cold });
    wholeProcess.push(reportComparison(`1 GiB file -> file, ${cold ? "cold" : "warm"}`, c));
    ratio(`platter vs dd bs=1M, ${cold ? "cold" : "warm"}, whole process`, c.ratio, 1.0);
  }
  if (have("ddrescue")) {
    const map = join(OUT, "dst.map");
    const ddrescue: Command = { label: "ddrescue", argv: ["ddrescue", "-q", src, dst, map], setup: () => (clean(), rmSync(map, { force: true })) };
    const platter: Command = { label: "platter capture", argv: [process.execPath, CLI, "capture", src, dst, "-q"], setup: clean };
    const c = compareInTurns(platter, ddrescue, { runs: RUNS, cold: true });
    wholeProcess.push(reportComparison("1 GiB file -> file, cold", c));
    ratio("platter vs ddrescue, cold, whole process", c.ratio, 1.0);
  }
  // Peak memory, one run each under GNU time.
  clean();
  report("1 GiB file", "platter capture", GiB, timed(process.execPath, [CLI, "capture", src, dst, "-q"]));
  clean();
  report("1 GiB file", "platter --hash sha256", GiB, timed(process.execPath, [CLI, "capture", src, dst, "-q", "--hash", "sha256"]));
  rmSync(src, { force: true });
  clean();
}

function sparseSource(): void {
  const sparse = join(OUT, "sparse-20g.img");
  const dense = join(OUT, "dense-200m.img");
  const dst = join(OUT, "dst.img");
  // 200 MiB of data in 20 chunks of 10 MiB spread over 20 GiB.
  sh(`rm -f ${sparse} && truncate -s 20G ${sparse}`);
  for (let i = 0; i < 20; i++) sh(`head -c 10M /dev/urandom | dd of=${sparse} bs=1M seek=${i * 1024 + 7} conv=notrunc status=none`);
  sh(`head -c 200M /dev/urandom > ${dense}`);
  const clean = () => rmSync(dst, { force: true });
  const data = best(2, clean, process.execPath, [CLI, "capture", dense, dst, "-q"]);
  report("200 MiB dense", "platter capture", 200 * MiB, data);
  const holes = best(2, clean, process.execPath, [CLI, "capture", sparse, dst, "-q"]);
  report("20 GiB sparse, 200 MiB data", "platter capture", 200 * MiB, holes);
  const du = Number(sh(`du -k ${dst}`).split(/\s+/)[0]);
  verdicts.push(`${du < 400 * 1024 ? "PASS" : "FAIL"} the 20 GiB image allocates ${(du / 1024).toFixed(0)} MiB (du), its holes stay holes`);
  ratio("sparse 20 GiB time / dense 200 MiB time", holes.seconds / Math.max(data.seconds, 0.01), 3, false);
  if (have("ddrescue")) {
    const map = join(OUT, "sparse.map");
    const ddrescue = best(1, () => (clean(), rmSync(map, { force: true })), "ddrescue", ["-q", "--sparse", sparse, dst, map]);
    report("20 GiB sparse, 200 MiB data", "ddrescue --sparse", 200 * MiB, ddrescue);
  }
  for (const f of [sparse, dense]) rmSync(f, { force: true });
  clean();
}

function failingDevice(): void {
  const missing = ["fuse", "loop"].filter((x) => !existsSync(x === "fuse" ? "/dev/fuse" : "/dev/loop-control"));
  if (!isRoot || missing.length > 0 || !have("ddrescue") || !have("gcc")) {
    console.log("(skipped the failing-device run: it needs root, /dev/fuse, loop devices, gcc and ddrescue)");
    return;
  }
  const backing = join(OUT, "backing-512m.img");
  sh(`head -c 512M /dev/urandom > ${backing}`);
  // A few bad spots; the rest of the 512 MiB is the "good area".
  const specs = ["100000", "300000-300063", "700000-700007"];
  const dst = join(OUT, "dst.img");
  const map = join(OUT, "dst.map");
  const run = (cmd: string, args: (dev: string) => string[]): Timing => {
    rmSync(dst, { force: true });
    rmSync(map, { force: true });
    const dev = sh(`${DEVICE_SCRIPT} up ${backing} ${specs.join(" ")} 2>/dev/null`).trim();
    try {
      dropCaches();
      return timed(cmd, args(dev));
    } finally {
      sh(`${DEVICE_SCRIPT} down ${dev} 2>/dev/null`);
    }
  };
  // The good areas: the copying phases only (ddrescue -n -N: no trimming, no scraping).
  const oursGood = run(process.execPath, (dev) => [CLI, "capture", dev, dst, "--map", map, "--no-trim", "--no-scrape", "-q"]);
  report("512 MiB failing device, good areas", "platter --no-trim --no-scrape", 512 * MiB, oursGood);
  const theirsGood = run("ddrescue", (dev) => ["-q", "-d", "-n", "-N", dev, dst, map]);
  report("512 MiB failing device, good areas", "ddrescue -d -n -N", 512 * MiB, theirsGood);
  ratio("platter vs ddrescue -d on the good areas of a failing device", theirsGood.seconds / oursGood.seconds, 1.0);
  // The whole rescue, for the record: platter trims 1 MiB failing blocks, ddrescue 64 KiB ones.
  const ours = run(process.execPath, (dev) => [CLI, "capture", dev, dst, "--map", map, "-q"]);
  report("512 MiB failing device, whole rescue", "platter capture", 512 * MiB, ours);
  const theirs = run("ddrescue", (dev) => ["-q", "-d", dev, dst, map]);
  report("512 MiB failing device, whole rescue", "ddrescue -d", 512 * MiB, theirs);
  verdicts.push(`INFO whole rescue of the failing device: platter ${(theirs.seconds / ours.seconds).toFixed(2)}x ddrescue -d's speed`);
  // With ddrescue's own cluster size a failed read costs 128 sector reads to trim, not 2048.
  const cluster = run(process.execPath, (dev) => [CLI, "capture", dev, dst, "--map", map, "--block-size", "64KiB", "-q"]);
  report("512 MiB failing device, whole rescue", "platter --block-size 64KiB", 512 * MiB, cluster);
  verdicts.push(`INFO whole rescue with --block-size 64KiB: platter ${(theirs.seconds / cluster.seconds).toFixed(2)}x ddrescue -d's speed`);
  rmSync(backing, { force: true });
  rmSync(dst, { force: true });
  rmSync(map, { force: true });
}

export default async function captureBench(): Promise<void> {
  console.log("\n== capture vs dd and ddrescue: 1 GiB file, 20 GiB sparse file, failing device, peak memory");
  {
    if (!existsSync(CLI)) throw new Error("run `npm run build` first");
    if (!existsSync("/usr/bin/time")) throw new Error("needs GNU time (/usr/bin/time, Debian package time)");
    mkdirSync(OUT, { recursive: true });
    if (!isRoot) console.log("(not root: the page cache is not dropped between runs)");
    try {
      fileToFile();
      sparseSource();
      failingDevice();
    } finally {
      rmSync(OUT, { recursive: true, force: true });
    }
    printTable();
  }
}
