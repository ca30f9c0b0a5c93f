/**
 * SHA-256 of a cached 1 GiB file against this CPU's single-core limit.
 * The limit is `openssl speed -evp sha256 -bytes 1048576` (printed first);
 * goal: `platter hash` and `platter capture --hash sha256` within 1.3x of
 * the time that limit gives for 1 GiB. Whole processes in turns (A B A B,
 * bench/lib/whole-process.ts, BENCH_RUNS each, default 5), warm cache:
 *  1. `platter hash` vs `openssl dgst -sha256` (the same work by the tool
 *     that sets the limit);
 *  2. `platter capture --hash sha256` vs `platter capture`: what the hash
 *     adds to a copy;
 *  3. cold (cache dropped before each run): `platter hash` vs `openssl dgst`.
 */
import { execFileSync, spawnSync } from "node:child_process";
import { existsSync, mkdirSync, rmSync, statSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { compareInTurns, report, type Command } from "./lib/whole-process.js";

const ROOT = fileURLToPath(new URL("..", import.meta.url));
const OUT = join(ROOT, "bench", "out", "hash");
const CLI = join(ROOT, "dist", "cli", "main.js");
const GiB = 1 << 30;
const RUNS = Number(process.env.BENCH_RUNS ?? 5);
const GOAL = 1.3;

/** Seconds per GiB at openssl's single-core SHA-256 speed on 1 MiB blocks. */
function sha256Limit(): number {
  const out = execFileSync("openssl", ["speed", "-evp", "sha256", "-bytes", "1048576", "-seconds", "3"], {
    encoding: "utf8",
    stdio: ["ignore", "pipe", "ignore"],
  });
  // The last line: "sha256   1981234.56k" (thousands of bytes per second).
  const m = /sha256\s+([\d.]+)k\s*$/m.exec(out);
  if (!m) throw new Error(`no speed in openssl's output: ${out}`);
  return GiB / (Number(m[1]) * 1000);
}

function verdict(what: string, seconds: number, limit: number): string {
  const times = seconds / limit;
  return `${what}: ${seconds.toFixed(3)} s = ${times.toFixed(2)}x the SHA-256 limit (goal <= ${GOAL}x: ${times <= GOAL ? "met" : "NOT met"})`;
}

export default async function hashBench(): Promise<void> {
  console.log("\n== hash: SHA-256 of a cached 1 GiB file against openssl's single-core limit");
  if (!existsSync(CLI)) throw new Error("run `npm run build` first");
  if (spawnSync("sh", ["-c", "command -v openssl"]).status !== 0) {
    console.log("skipped: openssl is not installed");
    return;
  }
  mkdirSync(OUT, { recursive: true });
  const src = join(OUT, "src-1g.img");
  const dst = join(OUT, "dst.img");
  if (!existsSync(src) || statSync(src).size !== GiB) execFileSync("sh", ["-c", `head -c ${GiB} /dev/urandom > ${src}`]);
  const limit = sha256Limit();
  console.log(`SHA-256 limit (openssl speed -evp sha256 -bytes 1048576): ${limit.toFixed(3)} s per GiB`);
  // Read into the cache again before each warm run: other work on the machine may have dropped it.
  const warmUp = () => execFileSync("sh", ["-c", `cat ${src} > /dev/null`]);
  // A capture starts after the last one's DEST is off the disk queue (sync), as in bench/capture.bench.ts.
  const clean = () => (rmSync(dst, { force: true }), execFileSync("sync"), warmUp());
  const hash: Command = { label: "platter hash", argv: [process.execPath, CLI, "hash", src, "-q"], setup: warmUp };
  const openssl: Command = { label: "openssl dgst -sha256", argv: ["openssl", "dgst", "-sha256", src], setup: warmUp };
  const capture: Command = { label: "platter capture", argv: [process.execPath, CLI, "capture", src, dst, "-q"], setup: clean };
  const hashedCapture: Command = {
    label: "platter capture --hash sha256",
    argv: [process.execPath, CLI, "capture", src, dst, "-q", "--hash", "sha256"],
    setup: clean,
  };
  const lines: string[] = [];
  const warm = compareInTurns(hash, openssl, { runs: RUNS });
  report("hash 1 GiB, warm", warm);
  lines.push(verdict("platter hash, warm", warm.a.median, limit));
  const copy = compareInTurns(hashedCapture, capture, { runs: RUNS });
  report("capture 1 GiB, warm", copy);
  lines.push(verdict("platter capture --hash sha256, warm", copy.a.median, limit));
  // Cold: no warm-up (compareInTurns drops the cache before each run, then runs the setup).
  const cold = compareInTurns({ ...hash, setup: undefined }, { ...openssl, setup: undefined }, { runs: RUNS, cold: true });
  report("hash 1 GiB, cold", cold, "(for the record)");
  for (const line of lines) console.log(line);
  rmSync(OUT, { recursive: true, force: true });
}
