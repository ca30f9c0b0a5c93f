/**
 * platter mount --fuse, whole process, as a user sees it:
 *  - time from `platter mount` to the first directory listing of the ext4
 *    partition inside a 2 GiB disk stored as .qcow2 (qemu-img) and as .zst
 *    (platter convert: seekable frames). Goal: under 0.5 s.
 *  - `cp -a` of every file out of the mounted partition against `platter
 *    extract` of the same image (goal: at least 0.5x extract's speed);
 *    against fuse2fs (e2fsprogs) on the raw partition and squashfuse on a
 *    squashfs of the same tree, each with platter serving the same bytes.
 * Page cache dropped before each run (root), so FUSE's kernel cache of an
 * earlier run does not help the next. Needs root, /dev/fuse, e2fsprogs,
 * fdisk, qemu-utils, squashfs-tools, fuse2fs, squashfuse.
 */
import { execFileSync, spawnSync } from "node:child_process";
import { existsSync, mkdirSync, rmSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { type Command, compareInTurns, dropCaches, report } from "./lib/whole-process.js";

const ROOT = fileURLToPath(new URL("..", import.meta.url));
const OUT = join(ROOT, "bench", "out", "fuse");
const CLI = join(ROOT, "dist", "cli", "main.js");
const DISK = join(OUT, "disk.img");
const QCOW2 = join(OUT, "disk.qcow2");
const ZST = join(OUT, "disk.img.zst");
const PART = join(OUT, "p1.ext4");
const SQFS = join(OUT, "tree.sqfs");
const MNT = join(OUT, "mnt");
const COPY = join(OUT, "copy");
const PART_START = 2048;
const RUNS = 3;

function sh(command: string): string {
  return execFileSync("bash", ["-c", command], { encoding: "utf8", stdio: ["ignore", "pipe", "inherit"] });
}

function have(tool: string): boolean {
  return spawnSync("sh", ["-c", `command -v ${tool}`]).status === 0;
}

/** 2 GiB MBR disk, one ext4 partition holding ~200 MiB in 1000 files of 4 KiB-400 KiB; its qcow2, zst, raw partition and squashfs. */
function build(): void {
  if (existsSync(SQFS)) return;
  mkdirSync(OUT, { recursive: true });
  const tree = join(OUT, "tree");
  rmSync(tree, { recursive: true, force: true });
  sh(`set -e; mkdir -p ${tree}
    head -c 256M /dev/urandom > ${OUT}/.pool
    i=0; for d in $(seq -w 0 19); do mkdir -p ${tree}/dir$d; for f in $(seq -w 0 49); do
      size=$(( (i * 7919 % 100 + 1) * 4096 )); off=$(( i * 4093 % 60000 ))
      tail -c +$((off * 4096 + 1)) ${OUT}/.pool | head -c $size > ${tree}/dir$d/file$f.bin; i=$((i + 1))
    done; done
    rm ${OUT}/.pool
    rm -f ${DISK}; truncate -s 2G ${DISK}
    echo 'start=${PART_START}, type=83' | sfdisk -q --no-reread --no-tell-kernel ${DISK}
    mkfs.ext4 -q -F -E offset=$((${PART_START} * 512)) -d ${tree} ${DISK} $(( (2048 - 1) * 1024 ))k
    qemu-img convert -O qcow2 ${DISK} ${QCOW2}
    node ${CLI} convert ${DISK} ${ZST} --force
    dd if=${DISK} of=${PART} bs=1M skip=1 conv=sparse status=none
    mksquashfs ${tree} ${SQFS} -quiet -no-progress -noappend`);
  rmSync(tree, { recursive: true, force: true });
}

function unmount(): void {
  spawnSync("node", [CLI, "umount", MNT], { stdio: "ignore" });
  spawnSync("fusermount3", ["-u", MNT], { stdio: "ignore" });
}

function mountWith(argv: string[]): void {
  unmount();
  mountOnly(argv);
}

/** The mount command alone: what timeToListing times (an unmount first would add a Node start of its own). */
function mountOnly(argv: string[]): void {
  const r = spawnSync(argv[0], argv.slice(1), { stdio: ["ignore", "ignore", "pipe"] });
  if (r.status !== 0) throw new Error(`${argv.join(" ")} failed: ${r.stderr}`);
}

/** How long starting Node takes on this machine right now: a mount starts it twice (command and server). */
function nodeStartup(): string {
  const runs: number[] = [];
  for (let i = 0; i < RUNS; i++) {
    const started = process.hrtime.bigint();
    spawnSync("node", ["-e", "0"]);
    runs.push(Number(process.hrtime.bigint() - started) / 1e9);
  }
  runs.sort((a, b) => a - b);
  const line = `node -e 0 (warm), for scale: median ${runs[1].toFixed(3)} s`;
  console.log(line);
  return line;
}

/** Median time from `platter mount` to the first `ls` of the mount's root, cold cache. */
function timeToListing(image: string): string {
  const runs: number[] = [];
  for (let i = 0; i < RUNS; i++) {
    unmount();
    dropCaches();
    const started = process.hrtime.bigint();
    mountOnly(["node", CLI, "mount", image, MNT, "--fuse"]);
    sh(`ls ${MNT} > /dev/null`);
    runs.push(Number(process.hrtime.bigint() - started) / 1e9);
  }
  unmount();
  runs.sort((a, b) => a - b);
  const line = `time to first listing, ${image.replace(`${OUT}/`, "")}: median ${runs[1].toFixed(3)} s [${runs[0].toFixed(3)}-${runs[2].toFixed(3)}] (goal < 0.5 s)`;
  console.log(line);
  return line;
}

const copyOut = (label: string): Command => ({
  label,
  argv: [],
  shell: `cp -a ${MNT}/. ${COPY}/`,
  setup: () => {
    rmSync(COPY, { recursive: true, force: true });
    mkdirSync(COPY);
  },
});

/** cp -a out of two mounts of the same tree, mounting each before its run (untimed). */
function compareMounts(title: string, a: { label: string; mount: string[] }, b: { label: string; mount: string[] }): void {
  const withMount = (side: { label: string; mount: string[] }): Command => {
    const copy = copyOut(side.label);
    return { ...copy, setup: () => (mountWith(side.mount), copy.setup?.()) };
  };
  report(title, compareInTurns(withMount(a), withMount(b), { runs: RUNS, cold: true }));
  unmount();
}

export default async function bench(): Promise<void> {
  console.log("\n== fuse: platter mount --fuse, first listing and cp -a, against platter extract, fuse2fs, squashfuse");
  const missing = ["mkfs.ext4", "sfdisk", "qemu-img", "mksquashfs", "fuse2fs", "squashfuse"].filter((t) => !have(t));
  if (process.getuid?.() !== 0 || !existsSync("/dev/fuse") || missing.length > 0) {
    console.log(`skipped: needs root, /dev/fuse and ${missing.join(", ") || "nothing else"}`);
    return;
  }
  build();
  mkdirSync(MNT, { recursive: true });
  nodeStartup();
  timeToListing(QCOW2);
  timeToListing(ZST);

  // platter extract against cp -a out of platter's own mount of the same qcow2.
  mountWith(["node", CLI, "mount", QCOW2, MNT, "--fuse"]);
  const extract: Command = {
    label: "platter extract",
    argv: ["node", CLI, "extract", QCOW2, "-o", COPY, "--part", "1"],
    setup: () => rmSync(COPY, { recursive: true, force: true }),
  };
  const fromMount = copyOut("cp -a from platter mount --fuse");
  report("qcow2, 200 MiB in 1000 files", compareInTurns(extract, fromMount, { runs: RUNS, cold: true }), "(goal: ratio <= 2)");
  unmount();

  compareMounts(
    "raw ext4 partition, cp -a",
    { label: "platter mount --fuse", mount: ["node", CLI, "mount", PART, MNT, "--fuse"] },
    { label: "fuse2fs -o ro", mount: ["fuse2fs", "-o", "ro,fakeroot", PART, MNT] },
  );
  compareMounts(
    "squashfs (gzip), cp -a",
    { label: "platter mount --fuse", mount: ["node", CLI, "mount", SQFS, MNT, "--fuse"] },
    { label: "squashfuse", mount: ["squashfuse", SQFS, MNT] },
  );
  rmSync(COPY, { recursive: true, force: true });
}
