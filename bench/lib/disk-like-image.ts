/**
 * A raw disk image that compresses and allocates like a used disk, for the
 * virtual-disk benches: per 64 KiB cluster 3/8 zeros (holes), 3/8 log-like
 * text, 2/8 random bytes, in runs of 1 to 16 clusters as files and free
 * space lie on a disk. Deterministic: every run of a bench reads the same bytes.
 */
import { spawnSync } from "node:child_process";
import { createCipheriv } from "node:crypto";
import { closeSync, openSync, writeSync } from "node:fs";

const CLUSTER = 65536;

/** Deterministic pseudo-random bytes (AES-CTR over zeros), fast enough not to matter. */
function randomBytes(length: number, seed: number): Buffer {
  const key = Buffer.alloc(16);
  key.writeUInt32LE(seed);
  return createCipheriv("aes-128-ctr", key, Buffer.alloc(16)).update(Buffer.alloc(length));
}

export function makeDiskLikeImage(path: string, size: number): void {
  const fd = openSync(path, "w");
  const line = (i: number) => `2026-11-30T12:${String(i % 60).padStart(2, "0")}:00 host kernel: [${i}] usb 1-1: new high-speed USB device number ${i % 128}\n`;
  let text = "";
  for (let i = 0; text.length < 4 << 20; i++) text += line(i);
  const textBytes = Buffer.from(text);
  let kindSeed = 1;
  for (let pos = 0; pos < size; ) {
    kindSeed = (kindSeed * 1103515245 + 12345) % 2 ** 31;
    const run = Math.min(size - pos, (1 + (kindSeed % 16)) * CLUSTER);
    const kind = (kindSeed >> 8) % 8;
    if (kind < 3) {
      pos += run; // zeros: left as a hole, as on a fresh disk image
      continue;
    }
    const data = kind < 6 ? textBytes.subarray(((pos / CLUSTER) % 32) * CLUSTER, ((pos / CLUSTER) % 32) * CLUSTER + run) : randomBytes(run, pos / CLUSTER);
    writeSync(fd, data, 0, data.length, pos);
    pos += run;
  }
  closeSync(fd);
  spawnSync("truncate", ["-s", String(size), path]);
}
