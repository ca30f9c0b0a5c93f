/**
 * Fixture images are built by the scripts in test/fixtures/ with real tools
 * (sfdisk, mkfs.*, xorriso...) into test/fixtures/out/ (git-ignored), once,
 * and rebuilt when their script changes. Several test processes may ask for
 * the same fixture at once, so building takes a lock.
 */
import { existsSync, mkdirSync, rmdirSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { run } from "./run.js";

export const FIXTURES = fileURLToPath(new URL("../fixtures/", import.meta.url));
export const FIXTURE_OUT = join(FIXTURES, "out");

function mtime(path: string): number | undefined {
  try {
    return statSync(path).mtimeMs;
  } catch {
    return undefined;
  }
}

async function withLock<T>(name: string, fn: () => Promise<T>): Promise<T> {
  const lock = join(FIXTURE_OUT, `.${name}.lock`);
  for (let i = 0; ; i++) {
    try {
      mkdirSync(lock);
      break;
    } catch {
      if (i > 3000) throw new Error(`fixture lock ${lock} held for 5 minutes; remove it if no test runs`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  try {
    return await fn();
  } finally {
    rmdirSync(lock);
  }
}

/**
 * Path of test/fixtures/out/<output>, built by `test/fixtures/<script> <path> [args...]`
 * unless it exists and is newer than the script.
 */
export async function fixture(script: string, output: string, args: string[] = []): Promise<string> {
  mkdirSync(FIXTURE_OUT, { recursive: true });
  const scriptPath = join(FIXTURES, script);
  const outPath = join(FIXTURE_OUT, output);
  const name = output.replace(/[^\w.-]/g, "_");
  // A stamp says when the build finished: the output's own mtime can be old on purpose
  // (make-tree.sh dates its folder 2023), which once rebuilt the tree for every test.
  const stamp = join(FIXTURE_OUT, `.${name}.built`);
  return withLock(name, async () => {
    const built = existsSync(outPath) ? mtime(stamp) : undefined;
    const scriptTime = mtime(scriptPath);
    if (scriptTime === undefined) throw new Error(`no fixture script ${scriptPath}`);
    if (built !== undefined && built >= scriptTime) return outPath;
    const r = await run("bash", [scriptPath, outPath, ...args], { timeoutMs: 600_000 });
    if (r.code !== 0) throw new Error(`fixture ${script} failed (${r.code}):\n${r.stdout}\n${r.stderr}`);
    writeFileSync(stamp, "");
    return outPath;
  });
}
