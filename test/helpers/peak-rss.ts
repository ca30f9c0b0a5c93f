/**
 * Peak memory of a child Node process, measured by the kernel
 * (getrusage's ru_maxrss, through process.resourceUsage()) as it exits: tests
 * bound memory in MiB, never time.
 */
import { run, type RunOptions, type RunResult } from "./run.js";

const MARK = "PEAK_RSS_KIB=";
const REPORT = `data:text/javascript,${encodeURIComponent(
  `import { writeSync } from "node:fs"; process.on("exit", () => writeSync(2, "\\n${MARK}" + process.resourceUsage().maxRSS + "\\n"));`,
)}`;

export interface PeakResult extends RunResult {
  /** Largest resident set of the process, in MiB. */
  peakMiB: number;
}

/** Run `node [nodeArgs...]` with the peak RSS reported; stderr comes back without the report line. */
export async function nodeWithPeak(nodeArgs: string[], options?: RunOptions): Promise<PeakResult> {
  const r = await run(process.execPath, ["--import", REPORT, ...nodeArgs], options);
  const at = r.stderr.lastIndexOf(`\n${MARK}`);
  if (at < 0) throw new Error(`no peak RSS reported (exit ${r.code}):\n${r.stderr}`);
  const peakMiB = Number.parseInt(r.stderr.slice(at + 1 + MARK.length), 10) / 1024;
  return { ...r, stderr: r.stderr.slice(0, at), peakMiB };
}
