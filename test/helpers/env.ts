/**
 * What the machine offers. Tests that need root, loop devices, FUSE or a
 * real tool pass `skip: needs(...)`; node:test then prints the reason.
 *
 * On CI (CI=true) nothing may skip: CI installs every tool
 * (test/fixtures/install-tools.sh) and runs as root, so a skip there would
 * hide a missing install step. There needs() and unavailable() throw, and
 * the test (or its file) fails with the reason.
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

const onCI = process.env.CI === "true";
export const isRoot = typeof process.getuid === "function" && process.getuid() === 0;
export const haveLoop = isRoot && existsSync("/dev/loop-control");
export const haveFuse = isRoot && existsSync("/dev/fuse");

/**
 * A test that cannot run here: the reason to skip it with, except on CI,
 * where this throws `CI=true but <what>: <remedy>`.
 */
export function unavailable(what: string, remedy: string): string {
  if (onCI) throw new Error(`CI=true but ${what}: ${remedy}`);
  return `SKIPPED: ${what}`;
}

function present(requirement: string): boolean {
  if (requirement === "root") return isRoot;
  if (requirement === "loop") return haveLoop;
  if (requirement === "fuse") return haveFuse;
  if (requirement.startsWith("/")) return existsSync(requirement);
  return haveTool(requirement);
}

/**
 * For node:test's `skip` option: false when everything is there, else a
 * reason naming what is missing. Requirements are "root", "loop", "fuse",
 * absolute paths of files, or commands.
 */
export function needs(...requirements: string[]): string | false {
  const missing = requirements.filter((r) => !present(r));
  if (missing.length === 0) return false;
  const privileges = missing.some((r) => r === "root" || r === "loop" || r === "fuse");
  return unavailable(
    `${missing.join(", ")} ${missing.length > 1 ? "are" : "is"} missing`,
    privileges
      ? "CI runs the tests as root with /dev/loop-control and /dev/fuse; add what is missing to test/fixtures/install-tools.sh"
      : "add the Debian packages that provide it to test/fixtures/install-tools.sh",
  );
}
