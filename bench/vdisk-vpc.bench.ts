/**
 * VHD, VHDX and VMDK against qemu-img, whole processes as users run them, on
 * a 1 GiB disk-like image (bench/lib/disk-like-image.ts: 3/8 zeros, 3/8
 * text, 2/8 random, in runs):
 *
 *   raw -> vhd    platter convert --to vhd     vs  qemu-img convert -O vpc -o force_size=on
 *   raw -> vhdx   platter convert --to vhdx    vs  qemu-img convert -O vhdx
 *   raw -> vmdk   platter convert --to vmdk    vs  qemu-img convert -O vmdk -o subformat=streamOptimized
 *                 (both deflate every grain: the slow one)
 *   X -> raw      platter convert --sparse     vs  qemu-img convert -O raw, from qemu-img's image of each format
 *
 * Commands run in turns (A B A B...), warm cache, outputs removed before
 * each run (untimed). qemu-img's output is flushed with `sync -d` inside its
 * timing, as platter's convert fdatasyncs DEST before renaming it into
 * place. Ratio = qemu-img's median / platter's: above 1, platter is faster.
 * On a machine shared with other work the wall-clock ratio swings with the
 * load; CPU seconds (user + system, GNU time, one
 * more run of each) are printed beside it as the steadier measure.
 */
import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, rmSync, statSync } from "node:fs";
import { availableParallelism, loadavg } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { makeDiskLikeImage } from "./lib/disk-like-image.js";
import { type Command, compareInTurns, cpuSeconds, report, thenSynced } from "./lib/whole-process.js";

const OUT = fileURLToPath(new URL("out/vdisk-vpc/", import.meta.url));
const CLI = fileURLToPath(new URL("../dist/cli/main.js", import.meta.url));
const SIZE = 1 << 30;
const RUNS = Number(process.env.BENCH_RUNS ?? 3);

/** platter's --to name, qemu-img's -O name and options for the same format. */
const FORMATS = [
  { to: "vhd", qemu: ["-O", "vpc", "-o", "force_size=on"] },
  { to: "vhdx", qemu: ["-O", "vhdx"] },
  { to: "vmdk", qemu: ["-O", "vmdk", "-o", "subformat=streamOptimized"] },
] as const;

function compare(title: string, a: Command, b: Command, extra?: () => string): void {
  const c = compareInTurns(a, b, { runs: RUNS });
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
  const a = join(OUT, "a.out");
  const b = join(OUT, "b.out");
  const cleanA = () => rmSync(a, { force: true });
  const cleanB = () => rmSync(b, { force: true });
  const platter = (...args: string[]) => [process.execPath, CLI, "convert", ...args, "--force", "--quiet"];
  const mib = (path: string) => `${(statSync(path).size / 2 ** 20).toFixed(0)} MiB`;
  const sizes = () => `(${mib(a)} vs ${mib(b)})`;
  const load = loadavg().map((l) => l.toFixed(1)).join(" ");
  console.log(`vhd/vhdx/vmdk (${availableParallelism()} cores, load average ${load}): 1 GiB disk, 3/8 zeros, 3/8 text, 2/8 random, ${RUNS} runs each`);

  for (const { to, qemu } of FORMATS) {
    compare(
      `raw -> ${to}`,
      { label: `platter convert --to ${to}`, argv: platter(raw, a, "--to", to), setup: cleanA },
      thenSynced({ label: `qemu-img convert ${qemu.join(" ")}`, argv: ["qemu-img", "convert", "-f", "raw", ...qemu, raw, b], setup: cleanB }, b),
      sizes,
    );
  }
  for (const { to, qemu } of FORMATS) {
    const image = join(OUT, `qemu.${to}`);
    if (!existsSync(image)) run(["qemu-img", "convert", "-f", "raw", ...qemu, raw, image]);
    const f = to === "vhd" ? "vpc" : to;
    compare(
      `${to} -> raw`,
      { label: "platter convert --sparse", argv: platter(image, a, "--to", "raw", "--sparse"), setup: cleanA },
      thenSynced({ label: `qemu-img convert -f ${f} -O raw`, argv: ["qemu-img", "convert", "-f", f, "-O", "raw", image, b], setup: cleanB }, b),
    );
  }
  cleanA();
  cleanB();
  rmSync(join(OUT, "time.out"), { force: true });
}
