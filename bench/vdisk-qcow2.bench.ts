/**
 * qcow2 against qemu-img, whole processes as users run them, on a 1 GiB
 * disk-like image (per 64 KiB: 3/8 zeros, 3/8 log-like text, 2/8 random,
 * in long runs as on a real disk):
 *
 *   raw -> qcow2              platter convert        vs  qemu-img convert -O qcow2
 *   raw -> compressed qcow2   platter convert --compress  vs  qemu-img convert -c -O qcow2
 *   qcow2 -> raw              platter convert --sparse  vs  qemu-img convert -O raw
 *                             (from qemu-img's plain and compressed images; both
 *                             leave the zero runs as holes, qemu-img by default)
 *
 * Commands run in turns (A B A B...), warm cache, outputs removed before
 * each run (untimed). qemu-img's output is flushed with `sync -d` inside its
 * timing, as platter's convert fdatasyncs DEST before renaming it into
 * place. Ratio = qemu-img's median / platter's: above 1, platter is faster.
 * On a machine shared with other work the wall-clock ratio swings with the
 * load; the CPU seconds (user + system, GNU time, one
 * more run of each) are printed beside it as the steadier measure.
 */
import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, rmSync, statSync } from "node:fs";
import { availableParallelism, loadavg } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { makeDiskLikeImage } from "./lib/disk-like-image.js";
import { type Command, compareInTurns, cpuSeconds, report, thenSynced } from "./lib/whole-process.js";

const OUT = fileURLToPath(new URL("out/vdisk-qcow2/", import.meta.url));
const CLI = fileURLToPath(new URL("../dist/cli/main.js", import.meta.url));
const SIZE = 1 << 30;
/** Runs of each plain row (BENCH_RUNS); compressed rows take at most 3, each run compresses a gigabyte on every core. */
const RUNS = Number(process.env.BENCH_RUNS ?? 5);

/** Time A against B (in turns), then their CPU seconds; print both. */
function compare(title: string, a: Command, b: Command, runs: number, extra?: () => string): void {
  const c = compareInTurns(a, b, { runs });
  const cpuA = cpuSeconds(a, join(OUT, "time.out"));
  const cpuB = cpuSeconds(b, join(OUT, "time.out"));
  report(title, c, `${extra?.() ?? ""}  CPU ${cpuA.toFixed(2)} s vs ${cpuB.toFixed(2)} s (ratio ${(cpuB / cpuA).toFixed(2)}x)`);
}

function run(argv: string[]): void {
  const r = spawnSync(argv[0] as string, argv.slice(1), { stdio: ["ignore", "ignore", "pipe"] });
  if (r.status !== 0) throw new Error(`${argv.join(" ")}: ${r.stderr}`);
}

export default async function bench(): Promise<void> {
  mkdirSync(OUT, { recursive: true });
  const raw = join(OUT, "disk.raw");
  if (!existsSync(raw)) makeDiskLikeImage(raw, SIZE);
  const qemuPlain = join(OUT, "qemu-plain.qcow2");
  const qemuZlib = join(OUT, "qemu-zlib.qcow2");
  if (!existsSync(qemuPlain)) run(["qemu-img", "convert", "-O", "qcow2", raw, qemuPlain]);
  if (!existsSync(qemuZlib)) run(["qemu-img", "convert", "-c", "-O", "qcow2", raw, qemuZlib]);
  const a = join(OUT, "a.out");
  const b = join(OUT, "b.out");
  const cleanA = () => rmSync(a, { force: true });
  const cleanB = () => rmSync(b, { force: true });
  const platter = (...args: string[]) => [process.execPath, CLI, "convert", ...args, "--force", "--quiet"];
  const mib = (path: string) => `${(statSync(path).size / 2 ** 20).toFixed(0)} MiB`;
  const load = loadavg().map((l) => l.toFixed(1)).join(" ");
  console.log(`qcow2 (${availableParallelism()} cores, load average ${load}): 1 GiB disk, 3/8 zeros, 3/8 text, 2/8 random`);

  const sizes = () => `(${mib(a)} vs ${mib(b)})`;
  compare(
    "raw -> qcow2",
    { label: "platter convert", argv: platter(raw, a, "--to", "qcow2"), setup: cleanA },
    thenSynced({ label: "qemu-img convert -O qcow2", argv: ["qemu-img", "convert", "-O", "qcow2", raw, b], setup: cleanB }, b),
    RUNS,
    sizes,
  );
  for (const type of ["zlib", "zstd"]) {
    compare(
      `raw -> ${type} qcow2`,
      { label: `platter convert --compress ${type}`, argv: platter(raw, a, "--to", "qcow2", "--compress", type), setup: cleanA },
      thenSynced({ label: `qemu-img convert -c${type === "zstd" ? " -o compression_type=zstd" : ""}`, argv: ["qemu-img", "convert", "-c", "-O", "qcow2", ...(type === "zstd" ? ["-o", "compression_type=zstd"] : []), raw, b], setup: cleanB }, b),
      Math.min(RUNS, 3),
      sizes,
    );
  }
  for (const [label, image] of [
    ["plain", qemuPlain],
    ["zlib", qemuZlib],
  ] as const) {
    compare(
      `${label} qcow2 -> raw`,
      { label: "platter convert --sparse", argv: platter(image, a, "--to", "raw", "--sparse"), setup: cleanA },
      thenSynced({ label: "qemu-img convert -O raw", argv: ["qemu-img", "convert", "-O", "raw", image, b], setup: cleanB }, b),
      RUNS,
    );
  }
  cleanA();
  cleanB();
  rmSync(join(OUT, "time.out"), { force: true });
}
