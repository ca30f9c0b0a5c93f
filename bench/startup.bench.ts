/**
 * Start-up as users see it: commands that do little, each one whole process,
 * in turns with `node -e 0` (the floor any Node program pays) and with the
 * real tool where there is one. Goal: within 1.3x `node -e 0`.
 * Inputs: the 4 MiB example disk, and a small ISO built once into bench/out/.
 */
import { execFileSync } from "node:child_process";
import { existsSync, mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { compareInTurns, report, type Command } from "./lib/whole-process.js";

const ROOT = fileURLToPath(new URL("..", import.meta.url));
const OUT = join(ROOT, "bench", "out", "startup");
const CLI = join(ROOT, "dist", "cli", "main.js");
const DISK = join(ROOT, "examples", "disk.img");
// Start-up runs are short and a noisy neighbour moves a median of few: 31 by default (BENCH_RUNS).
const RUNS = Number(process.env.BENCH_RUNS ?? 31);
const GOAL = 1.3;

function platter(...args: string[]): Command {
  return { label: `platter ${args[0]}`, argv: [process.execPath, CLI, ...args] };
}

/** 20 small files in two folders, written by genisoimage when it is there (platter iso otherwise). */
function smallIso(): string {
  const iso = join(OUT, "small.iso");
  if (existsSync(iso)) return iso;
  const tree = join(OUT, "tree");
  for (let i = 0; i < 20; i++) {
    const dir = join(tree, `dir${i % 2}`);
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, `file-${i}.txt`), `file ${i}\n`);
  }
  try {
    execFileSync("genisoimage", ["-quiet", "-R", "-J", "-o", iso, tree], { stdio: "ignore" });
  } catch {
    execFileSync(process.execPath, [CLI, "iso", tree, "-o", iso], { stdio: "ignore" });
  }
  return iso;
}

export default async function startupBench(): Promise<void> {
  console.log(`\n== start-up: small commands, whole process, against node -e 0 (goal <= ${GOAL}x)`);
  if (!existsSync(CLI)) throw new Error("run `npm run build` first");
  mkdirSync(OUT, { recursive: true });
  const iso = smallIso();
  const floor: Command = { label: "node -e 0", argv: [process.execPath, "-e", "0"] };
  for (const command of [platter("--version"), platter("--help"), platter("parts", DISK), platter("ls", iso, "/dir0")]) {
    const c = compareInTurns(command, floor, { runs: RUNS });
    // c.ratio is node's time over platter's: its inverse is platter's cost in units of node -e 0.
    const times = 1 / c.ratio;
    report(command.label, c, `platter = ${times.toFixed(2)}x node -e 0 (goal <= ${GOAL}x: ${times <= GOAL ? "met" : "NOT met"})`);
  }
  const sfdisk: Command = { label: "sfdisk --json", argv: ["sfdisk", "--json", DISK] };
  report("parts of the 4 MiB example", compareInTurns(platter("parts", DISK, "--json"), sfdisk, { runs: RUNS }), "(for the record)");
}
