/**
 * Whole-process timing, as users and scripts see it: each command is one
 * process, start-up included. Two commands are run in turns (A B A B ...) so
 * a slow minute on the machine hits both alike; each pair may start from a
 * dropped page cache ("cold", root only) or from a warm one. What is printed
 * is the median and the spread (min-max) of each, and B's time over A's,
 * with each command's median CPU time (user + system, its children
 * included): on a machine shared with other work, wall times stretch with
 * the load while CPU times mostly do not.
 */
import { spawnSync } from "node:child_process";
import { readFileSync, writeFileSync } from "node:fs";

export interface Command {
  /** Short label for the table: "platter convert", "pigz -6". */
  label: string;
  argv: string[];
  /** Run before each timed run, untimed (remove the previous output...). */
  setup?: () => void;
  /** Shell pipeline instead of argv (`xz -dc x | sha256sum`). */
  shell?: string;
}

/**
 * `command`, then its output's data flushed to the disk (`sync -d`), timed as
 * one: platter's convert fdatasyncs DEST before renaming it into place, so a
 * reference that leaves its output in the page cache has done less work.
 */
export function thenSynced(command: Command, out: string): Command {
  return { ...command, label: `${command.label} + sync -d`, argv: ["sh", "-c", `"$0" "$@" && sync -d '${out}'`, ...command.argv] };
}

export interface Timing {
  label: string;
  median: number;
  min: number;
  max: number;
  runs: number[];
  /** Median CPU seconds (user + system) of the runs. */
  cpu: number;
}

export interface Comparison {
  a: Timing;
  b: Timing;
  /** b.median / a.median: above 1 means A (platter) is faster. */
  ratio: number;
  how: string;
}

const isRoot = typeof process.getuid === "function" && process.getuid() === 0;

/** Empty the page cache (root only); false when it could not. */
export function dropCaches(): boolean {
  if (!isRoot) return false;
  spawnSync("sync");
  try {
    writeFileSync("/proc/sys/vm/drop_caches", "3\n");
    return true;
  } catch {
    return false;
  }
}

const TICKS_PER_SECOND = 100;

/**
 * CPU seconds used by this process's waited-for children so far (cutime +
 * cstime of /proc/self/stat, in USER_HZ ticks, 100 a second on Linux);
 * undefined where there is no /proc.
 */
function childrenCpu(): number | undefined {
  try {
    // Fields after the command name (which may hold spaces): state is field 3, cutime 16, cstime 17.
    const stat = readFileSync("/proc/self/stat", "utf8");
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return (Number(fields[13]) + Number(fields[14])) / TICKS_PER_SECOND;
  } catch {
    return undefined;
  }
}

function timeOnce(command: Command): { wall: number; cpu: number } {
  command.setup?.();
  const cpuBefore = childrenCpu();
  const started = process.hrtime.bigint();
  const r = command.shell
    ? spawnSync("sh", ["-c", command.shell], { stdio: ["ignore", "ignore", "pipe"] })
    : spawnSync(command.argv[0], command.argv.slice(1), { stdio: ["ignore", "ignore", "pipe"] });
  const wall = Number(process.hrtime.bigint() - started) / 1e9;
  const cpuAfter = childrenCpu();
  if (r.status !== 0) {
    throw new Error(`${command.label} failed (exit ${r.status}): ${r.stderr?.toString().trim().split("\n").at(-1) ?? ""}`);
  }
  return { wall, cpu: cpuBefore === undefined || cpuAfter === undefined ? Number.NaN : cpuAfter - cpuBefore };
}

function medianOf(values: number[]): number {
  const sorted = [...values].sort((x, y) => x - y);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}

function summarise(label: string, timings: Array<{ wall: number; cpu: number }>): Timing {
  const runs = timings.map((t) => t.wall);
  return { label, median: medianOf(runs), min: Math.min(...runs), max: Math.max(...runs), runs, cpu: medianOf(timings.map((t) => t.cpu)) };
}

/** Run A and B in turns, `runs` times each; `cold` drops the page cache before every run. */
export function compareInTurns(a: Command, b: Command, options: { runs?: number; cold?: boolean } = {}): Comparison {
  const runs = options.runs ?? 5;
  const cold = Boolean(options.cold) && isRoot;
  const ta: Array<{ wall: number; cpu: number }> = [];
  const tb: Array<{ wall: number; cpu: number }> = [];
  for (let i = 0; i < runs; i++) {
    for (const [command, into] of [[a, ta], [b, tb]] as const) {
      if (cold) dropCaches();
      into.push(timeOnce(command));
    }
  }
  const A = summarise(a.label, ta);
  const B = summarise(b.label, tb);
  const cache = cold ? "page cache dropped before each run" : options.cold ? "warm (not root: could not drop the cache)" : "warm cache";
  return { a: A, b: B, ratio: B.median / A.median, how: `whole process, ${runs} runs each in turns (A B A B), ${cache}, median [min-max], median CPU user+sys` };
}

function fmt(t: Timing): string {
  return `${t.median.toFixed(3)} s [${t.min.toFixed(3)}-${t.max.toFixed(3)}] cpu ${t.cpu.toFixed(2)} s`;
}

/** One line per comparison: what, both timings, and the ratio (>1: A is faster). */
export function report(title: string, c: Comparison, extra = ""): string {
  const line = `${title}: ${c.a.label} ${fmt(c.a)}  vs  ${c.b.label} ${fmt(c.b)}  ratio ${c.ratio.toFixed(2)}x${extra ? `  ${extra}` : ""}\n    (${c.how})`;
  console.log(line);
  return line;
}

/** User + system CPU seconds of one more run of `command`, measured by GNU time (its report written to `scratch`). */
export function cpuSeconds(command: Command, scratch: string): number {
  command.setup?.();
  const r = spawnSync("/usr/bin/time", ["-f", "%U %S", "-o", scratch, ...command.argv], { stdio: ["ignore", "ignore", "pipe"] });
  if (r.status !== 0) throw new Error(`${command.label}: ${r.stderr}`);
  const [user, system] = readFileSync(scratch, "utf8").trim().split(/\s+/).map(Number);
  return (user as number) + (system as number);
}
