/**
 * Whole-process timing, as users and scripts see it: each command is one
 * process, start-up included. Two commands are run in turns (A B A B ...) so
 * a slow minute on the machine hits both alike; each pair may start from a
 * dropped page cache ("cold", root only) or from a warm one. What is printed
 * is the median and the spread (min-max) of each, and B's time over A's.
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

export interface Timing {
  label: string;
  median: number;
  min: number;
  max: number;
  runs: number[];
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

function timeOnce(command: Command): number {
  command.setup?.();
  const started = process.hrtime.bigint();
  const r = command.shell
    ? spawnSync("sh", ["-c", command.shell], { stdio: ["ignore", "ignore", "pipe"] })
    : spawnSync(command.argv[0], command.argv.slice(1), { stdio: ["ignore", "ignore", "pipe"] });
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  if (r.status !== 0) {
    throw new Error(`${command.label} failed (exit ${r.status}): ${r.stderr?.toString().trim().split("\n").at(-1) ?? ""}`);
  }
  return seconds;
}

function summarise(label: string, runs: number[]): Timing {
  const sorted = [...runs].sort((x, y) => x - y);
  const mid = Math.floor(sorted.length / 2);
  const median = sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
  return { label, median, min: sorted[0], max: sorted[sorted.length - 1], runs };
}

/** Run A and B in turns, `runs` times each; `cold` drops the page cache before every run. */
export function compareInTurns(a: Command, b: Command, options: { runs?: number; cold?: boolean } = {}): Comparison {
  const runs = options.runs ?? 5;
  const cold = Boolean(options.cold) && isRoot;
  const ta: number[] = [];
  const tb: number[] = [];
  for (let i = 0; i < runs; i++) {
    for (const [command, into] of [[a, ta], [b, tb]] as const) {
      if (cold) dropCaches();
      into.push(timeOnce(command));
    }
  }
  const A = summarise(a.label, ta);
  const B = summarise(b.label, tb);
  const cache = cold ? "page cache dropped before each run" : options.cold ? "warm (not root: could not drop the cache)" : "warm cache";
  return { a: A, b: B, ratio: B.median / A.median, how: `whole process, ${runs} runs each in turns (A B A B), ${cache}, median [min-max]` };
}

function fmt(t: Timing): string {
  return `${t.median.toFixed(3)} s [${t.min.toFixed(3)}-${t.max.toFixed(3)}]`;
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
