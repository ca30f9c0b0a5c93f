/**
 * Extract a 1 GiB ext4 image holding a few thousand files (about 700 MiB):
 * `platter extract` against `debugfs -R rdump` and against loop-mount +
 * `cp -a` (when root with loop devices), same image, same run, warm cache,
 * best of three each.
 * Needs e2fsprogs; the image is built once into bench/out/.
 */
import { execFileSync, spawnSync } from "node:child_process";
import { existsSync, mkdirSync, rmSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

const ROOT = fileURLToPath(new URL("..", import.meta.url));
const OUT = join(ROOT, "bench", "out");
const IMAGE = join(OUT, "extract-1g.ext4");
const CLI = join(ROOT, "dist", "cli", "main.js");

function sh(command: string): void {
  execFileSync("bash", ["-c", command], { stdio: ["ignore", "ignore", "inherit"] });
}

/** Best of `ROUNDS` runs, each after `prepare` and a sync, so one run's writeback does not slow the next. */
const ROUNDS = 3;
function timed(label: string, command: string, prepare: () => void): number {
  let best = Number.POSITIVE_INFINITY;
  for (let i = 0; i < ROUNDS; i++) {
    prepare();
    sh("sync");
    const started = process.hrtime.bigint();
    const r = spawnSync("bash", ["-c", command], { stdio: ["ignore", "ignore", "pipe"] });
    const seconds = Number(process.hrtime.bigint() - started) / 1e9;
    if (r.status !== 0) throw new Error(`${label} failed: ${r.stderr}`);
    best = Math.min(best, seconds);
  }
  console.log(`${label.padEnd(24)} ${best.toFixed(2)} s (best of ${ROUNDS})`);
  return best;
}

function buildImage(): void {
  if (existsSync(IMAGE)) return;
  mkdirSync(OUT, { recursive: true });
  const tree = join(OUT, "extract-tree");
  rmSync(tree, { recursive: true, force: true });
  // 3000 files in 30 folders, 4 KiB to ~460 KiB, plus 4 files of 32 MiB: about 700 MiB of data.
  sh(`set -e; mkdir -p ${tree}
    for d in $(seq -w 0 29); do mkdir -p ${tree}/dir$d; done
    head -c 512M /dev/urandom > ${tree}/.pool
    i=0; for d in $(seq -w 0 29); do for f in $(seq -w 0 99); do
      size=$(( (i * 7919 % 112 + 1) * 4096 )); off=$(( i * 4093 % 100000 ))
      tail -c +$((off * 4096 + 1)) ${tree}/.pool | head -c $size > ${tree}/dir$d/file$f.bin; i=$((i + 1))
    done; done
    for b in 0 1 2 3; do head -c 32M ${tree}/.pool > ${tree}/big$b.bin; done
    rm ${tree}/.pool
    mkfs.ext4 -q -F -d ${tree} ${IMAGE} 1G`);
  rmSync(tree, { recursive: true, force: true });
}

export default async function bench(): Promise<void> {
  console.log("\n== extract: 1 GiB ext4, 3004 files: platter extract vs debugfs rdump vs mount + cp -a");
  if (spawnSync("sh", ["-c", "command -v debugfs"]).status !== 0) {
    console.log("skipped: needs debugfs (e2fsprogs)");
    return;
  }
  if (!existsSync(CLI)) throw new Error("run `npm run build` first");
  buildImage();
  const dest = join(OUT, "extract-dest");
  const fresh = () => {
    rmSync(dest, { recursive: true, force: true });
    mkdirSync(dest, { recursive: true });
  };
  sh(`cat ${IMAGE} > /dev/null`); // warm the page cache for everyone alike
  const platter = timed("platter extract", `node ${CLI} extract ${IMAGE} -o ${dest} -q`, fresh);
  const debugfs = timed("debugfs rdump", `debugfs -R "rdump / ${dest}" ${IMAGE}`, fresh);
  let mount: number | undefined;
  const canMount = process.getuid?.() === 0 && existsSync("/dev/loop-control");
  if (canMount) {
    const mnt = join(OUT, "extract-mnt");
    mkdirSync(mnt, { recursive: true });
    const loop = execFileSync("losetup", ["-f", "--show", "-r", IMAGE], { encoding: "utf8" }).trim();
    try {
      sh(`mount -o ro ${loop} ${mnt}`);
      try {
        mount = timed("mount + cp -a", `cp -a ${mnt}/. ${dest}/`, fresh);
      } finally {
        sh(`umount ${mnt}`);
      }
    } finally {
      sh(`losetup -d ${loop}`);
    }
  } else {
    console.log("mount + cp -a            skipped (needs root and loop devices)");
  }
  rmSync(dest, { recursive: true, force: true });
  console.log(`platter / debugfs: ${(platter / debugfs).toFixed(2)}x the time (goal: at most 1)`);
  if (mount !== undefined) console.log(`platter / mount + cp -a: ${(platter / mount).toFixed(2)}x the time`);
}
