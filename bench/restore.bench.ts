/**
 * `platter restore` against `dd bs=4M oflag=direct conv=fsync` (what people
 * type to write an image to a disk; conv=fsync because restore flushes the
 * device before it says done, which costs 0.5 s here even after direct
 * writes: the loop device passes the flush to its file), whole processes, on a 1 GiB image written to a
 * loop device whose own I/O goes straight to its backing file
 * (losetup --direct-io=on), so the device does not absorb writes in a
 * page cache as a loop device normally does:
 *
 *   write            platter restore IMG DEV --yes           vs  dd if=IMG of=DEV bs=4M oflag=direct conv=fsync
 *   write + check    platter restore IMG DEV --yes --verify  vs  the same dd, then
 *                                                               dd if=DEV bs=4M iflag=direct count=256 | cmp - IMG
 *
 * The image is a 1 GiB disk-like file (per 4 MiB: 3 MiB of pseudo-random
 * data, 1 MiB of zeros): without --discard platter writes the zeros too, as
 * dd does, so both write every byte. Runs in turns (A B A B), warm cache for
 * the image; ratio = dd's median / platter's (above 1: platter is faster).
 * Root and a loop device needed. Inputs in bench/out/restore/, removed at the end.
 */
import { execFileSync, spawnSync } from "node:child_process";
import { createCipheriv } from "node:crypto";
import { closeSync, mkdirSync, openSync, rmSync, writeSync } from "node:fs";
import { loadavg } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { compareInTurns, report } from "./lib/whole-process.js";

const OUT = fileURLToPath(new URL("out/restore/", import.meta.url));
const CLI = fileURLToPath(new URL("../dist/cli/main.js", import.meta.url));
const MiB = 1 << 20;
const SIZE = 1 << 30;
const RUNS = 3;

function sh(command: string): string {
  return execFileSync("bash", ["-c", command], { encoding: "utf8", stdio: ["ignore", "pipe", "inherit"] });
}

/** Deterministic pseudo-random bytes (AES-CTR over zeros). */
function randomBytes(length: number, seed: number): Buffer {
  const key = Buffer.alloc(16);
  key.writeUInt32LE(seed);
  return createCipheriv("aes-128-ctr", key, Buffer.alloc(16)).update(Buffer.alloc(length));
}

function makeImage(path: string): void {
  const fd = openSync(path, "w");
  try {
    for (let at = 0; at < SIZE; at += 4 * MiB) {
      writeSync(fd, randomBytes(3 * MiB, at / MiB), 0, 3 * MiB, at);
      writeSync(fd, Buffer.alloc(MiB), 0, MiB, at + 3 * MiB);
    }
  } finally {
    closeSync(fd);
  }
}

export default async function bench(): Promise<void> {
  if (process.getuid?.() !== 0 || spawnSync("sh", ["-c", "command -v losetup"]).status !== 0) {
    console.log("restore bench: SKIPPED (needs root and losetup for a loop device)");
    return;
  }
  mkdirSync(OUT, { recursive: true });
  const image = join(OUT, "disk.img");
  const backing = join(OUT, "target.bin");
  let device: string | undefined;
  try {
    makeImage(image);
    sh(`truncate -s ${SIZE} ${backing} && fallocate -l ${SIZE} ${backing}`);
    device = sh(`losetup -f --show --direct-io=on ${backing}`).trim();
    sh(`cat ${image} > /dev/null`); // warm: the image is read from the cache by both
    console.log(`restore bench: 1 GiB image to ${device} (loop, direct I/O to its backing file); load average ${loadavg()[0].toFixed(2)}`);
    const dd = `dd if=${image} of=${device} bs=4M oflag=direct conv=fsync status=none`;
    report(
      "write",
      compareInTurns(
        { label: "platter restore", argv: [process.execPath, CLI, "restore", image, device, "--yes", "--quiet"] },
        { label: "dd bs=4M oflag=direct conv=fsync", argv: [], shell: dd },
        { runs: RUNS },
      ),
    );
    report(
      "write + read back",
      compareInTurns(
        { label: "platter restore --verify", argv: [process.execPath, CLI, "restore", image, device, "--yes", "--quiet", "--verify"] },
        { label: "dd + dd iflag=direct | cmp", argv: [], shell: `${dd} && dd if=${device} bs=4M iflag=direct count=${SIZE / (4 * MiB)} status=none | cmp - ${image}` },
        { runs: RUNS },
      ),
    );
  } finally {
    if (device) spawnSync("losetup", ["-d", device]);
    rmSync(OUT, { recursive: true, force: true });
  }
}
