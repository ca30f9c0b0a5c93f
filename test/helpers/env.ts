/**
 * What the machine offers. Tests that need root, loop devices, FUSE or a
 * real tool pass `skip: needs(...)`; node:test then prints the reason.
 */
import { execFileSync } from "node:child_process";
import { existsSync } from "node:fs";

const cache = new Map<string, boolean>();

export function haveTool(name: string): boolean {
  let ok = cache.get(name);
  if (ok === undefined) {
    try {
      execFileSync("sh", ["-c", `command -v ${name}`], { stdio: "ignore" });
      ok = true;
    } catch {
      ok = false;
    }
    cache.set(name, ok);
  }
  return ok;
}

export const isRoot = typeof process.getuid === "function" && process.getuid() === 0;
export const haveLoop = isRoot && existsSync("/dev/loop-control");
export const haveFuse = isRoot && existsSync("/dev/fuse");

/** For node:test's `skip` option: false when everything is there, else a reason naming what is missing. */
export function needs(...requirements: string[]): string | false {
  const missing: string[] = [];
  for (const r of requirements) {
    if (r === "root" ? !isRoot : r === "loop" ? !haveLoop : r === "fuse" ? !haveFuse : !haveTool(r)) missing.push(r);
  }
  return missing.length ? `SKIPPED: needs ${missing.join(", ")}` : false;
}
