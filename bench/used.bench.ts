/**
 * `capture --used-only` against the tools people use for the job, on a
 * 4 GiB ext4 filesystem 8% full (a sparse file made here with mkfs.ext4 -d:
 * its free space is holes, so dd reads it from no disk at all, which flatters dd):
 *  1. into a raw image: platter (sparse DEST) vs `dd bs=1M`, and vs
 *     `partclone.ext4 -c` (Debian's partclone, its own image format);
 *  2. compressed: platter into .zst vs `partclone.ext4 -c | zstd -T0`.
 *     Until capture writes .zst itself, platter's side is
 *     `capture --used-only SRC - | zstd -T0` (free space streams as zeros).
 * Whole processes, in turns, page cache dropped before each run when root.
 */
import { execFileSync, spawnSync } from "node:child_process";
import { closeSync, mkdirSync, openSync, readSync, rmSync, statSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { compareInTurns, report } from "./lib/whole-process.js";

const ROOT = fileURLToPath(new URL("..", import.meta.url));
const OUT = join(ROOT, "bench", "out", "used");
const CLI = join(ROOT, "dist", "cli", "main.js");
const RUNS = 3;

function sh(command: string): string {
  return execFileSync("bash", ["-c", command], { encoding: "utf8", stdio: ["ignore", "pipe", "inherit"] });
}

function have(tool: string): boolean {
  return spawnSync("bash", ["-c", `command -v ${tool}`], { stdio: "ignore" }).status === 0;
}

/** 4 GiB ext4 (4 KiB blocks), ~190 MiB of files of mixed sizes: with the journal and inode tables, 8% of it used. */
function makeSource(): string {
  const img = join(OUT, "ext4-4g.img");
  const tree = join(OUT, "tree");
  sh(`rm -rf ${tree} && mkdir -p ${tree}/big ${tree}/small`);
  for (let i = 0; i < 4; i++) sh(`head -c 32M /dev/urandom > ${tree}/big/f${i}`);
  sh(`for d in $(seq 1 20); do mkdir ${tree}/small/$d; for i in $(seq 1 100); do head -c $((RANDOM * 2)) /dev/urandom > ${tree}/small/$d/f$i; done; done`);
  sh(`truncate -s 4G ${img} && mkfs.ext4 -q -F -b 4096 -E lazy_itable_init=0,lazy_journal_init=0 -d ${tree} ${img} && rm -rf ${tree}`);
  return img;
}

export default async function main(): Promise<void> {
  const missing = ["mkfs.ext4", "dd", "partclone.ext4", "zstd"].filter((t) => !have(t));
  if (missing.length) {
    console.log(`used: skipped, missing ${missing.join(", ")} (test/fixtures/install-tools.sh installs them)`);
    return;
  }
  mkdirSync(OUT, { recursive: true });
  try {
    const src = makeSource();
    const free = Number(/Free blocks:\s+(\d+)/.exec(sh(`dumpe2fs -h ${src} 2>/dev/null`))?.[1]);
    const size = statSync(src).size;
    console.log(`used: ${src}: ${(size / 2 ** 30).toFixed(0)} GiB ext4, ${(((size / 4096 - free) / (size / 4096)) * 100).toFixed(1)}% used`);
    const raw = join(OUT, "used.img");
    const ddOut = join(OUT, "dd.img");
    const pc = join(OUT, "partclone.img");
    const rm = (path: string) => () => rmSync(path, { force: true });
    const platterRaw = { label: "platter capture --used-only", argv: [process.execPath, CLI, "capture", src, raw, "--used-only", "-q"], setup: rm(raw) };

    const vsDd = compareInTurns(platterRaw, { label: "dd bs=1M", argv: ["dd", `if=${src}`, `of=${ddOut}`, "bs=1M", "status=none"], setup: rm(ddOut) }, { runs: RUNS, cold: true });
    report("used (raw) vs dd", vsDd, `image allocates ${(statSync(raw).blocks * 512 / 2 ** 20).toFixed(0)} MiB vs dd's ${(statSync(ddOut).blocks * 512 / 2 ** 20).toFixed(0)} MiB`);
    rmSync(ddOut, { force: true });
    const vsPc = compareInTurns(
      platterRaw,
      { label: "partclone.ext4 -c", argv: ["partclone.ext4", "-q", "-c", "-s", src, "-O", pc, "-L", "/dev/null"], setup: rm(pc) },
      { runs: RUNS, cold: true },
    );
    report("used (raw) vs partclone", vsPc, `partclone image ${(statSync(pc).size / 2 ** 20).toFixed(0)} MiB`);
    rmSync(pc, { force: true });

    const zst = join(OUT, "used.img.zst");
    const pcZst = join(OUT, "partclone.img.zst");
    // capture into .zst natively once it writes it (zstd magic 28 b5 2f fd); until then through a pipe.
    spawnSync(process.execPath, [CLI, "capture", src, zst, "--used-only", "-q"]);
    const magic = Buffer.alloc(4);
    const fd = openSync(zst, "r");
    readSync(fd, magic, 0, 4, 0);
    closeSync(fd);
    const native = magic.equals(Buffer.from([0x28, 0xb5, 0x2f, 0xfd]));
    const platterZst = native
      ? { label: "platter capture --used-only DEST.zst", argv: [process.execPath, CLI, "capture", src, zst, "--used-only", "-q"], setup: rm(zst) }
      : { label: "platter capture --used-only - | zstd -T0", argv: [], shell: `node ${CLI} capture ${src} - --used-only -q | zstd -q -T0 > ${zst}`, setup: rm(zst) };
    const vsPcZst = compareInTurns(
      platterZst,
      { label: "partclone.ext4 -c | zstd -T0", argv: [], shell: `partclone.ext4 -q -c -s ${src} -o - -L /dev/null | zstd -q -T0 > ${pcZst}`, setup: rm(pcZst) },
      { runs: RUNS, cold: true },
    );
    report("used (.zst) vs partclone | zstd", vsPcZst, `${(statSync(zst).size / 2 ** 20).toFixed(0)} MiB vs ${(statSync(pcZst).size / 2 ** 20).toFixed(0)} MiB`);
  } finally {
    rmSync(OUT, { recursive: true, force: true });
  }
}
