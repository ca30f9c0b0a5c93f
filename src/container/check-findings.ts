/**
 * What a `platter check` of one layer collects as it goes: every problem
 * counted, the first MAX_PROBLEMS listed, and the guest bytes each
 * corruption puts in doubt (a leak wastes space and harms no data). Shared
 * by every format's check, so their reports count and cap alike.
 */
import { mergeRanges } from "../util/ranges.js";
import type { ContainerCheckReport, ContainerName } from "./format.js";

/** Problems listed one by one; beyond, only counted. */
const MAX_PROBLEMS = 1000;

export interface CheckProblem {
  severity: "corruption" | "leak";
  message: string;
  /** Guest bytes [offset, length] whose content the problem puts in doubt. */
  guest?: [number, number];
}

export class CheckFindings<P extends CheckProblem = CheckProblem> {
  corruptions = 0;
  leaks = 0;
  readonly problems: P[] = [];
  notListed = 0;
  private readonly guest: Array<[number, number]> = [];

  /** `count`: how many problems this one line stands for (a run of clusters past the end). */
  add(problem: P, count = 1): void {
    if (problem.severity === "corruption") this.corruptions += count;
    else this.leaks += count;
    if (problem.guest && problem.severity === "corruption" && problem.guest[1] > 0) this.guest.push(problem.guest);
    if (this.problems.length < MAX_PROBLEMS) this.problems.push(problem);
    else this.notListed++;
  }

  /** A corruption; `alsoInDoubt`: more guest bytes it puts in doubt (the other block of an overlapping pair). Fits a ProblemSink. */
  corruption(message: string, guest?: [number, number], alsoInDoubt?: [number, number]): void {
    this.add({ severity: "corruption", message, ...(guest ? { guest } : {}) } as P);
    if (alsoInDoubt && alsoInDoubt[1] > 0) this.guest.push(alsoInDoubt);
  }

  damagedGuestRanges(): Array<[number, number]> {
    return mergeRanges(this.guest);
  }

  report(format: ContainerName): ContainerCheckReport {
    return {
      format,
      clean: this.corruptions === 0 && this.leaks === 0,
      corruptions: this.corruptions,
      leaks: this.leaks,
      problems: this.problems,
      problemsNotListed: this.notListed,
      damagedGuestRanges: this.damagedGuestRanges(),
    };
  }
}

/** A table walk's sink (ProblemSink) that files each problem as a corruption, worded as qemu-img check words errors. */
export function errorSink(findings: CheckFindings): (message: string, guest?: [number, number], alsoInDoubt?: [number, number]) => void {
  return (message, guest, alsoInDoubt) => findings.corruption(`ERROR ${message}`, guest, alsoInDoubt);
}
