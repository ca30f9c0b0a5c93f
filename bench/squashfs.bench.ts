/**
 * Read one 64 MiB file out of a squashfs image (half text, half base64 of
 * random bytes), per compressor: `unsquashfs -cat` against platter's reader,
 * same image, same run. Prints MB/s and the ratio (>1: platter is faster).
 */
import { execFileSync, spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync, mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { openSquashfs } from "../src/fs/squashfs/index.js";
import { openSource } from "../src/io/file-source.js";

const OUT = fileURLToPath(new URL("out/squashfs/", import.meta.url));
const SIZE = 64 << 20;

function makeInput(dir: string): void {
  const text = Buffer.from(Array.from({ length: 2_000_000 }, (_, i) => `${i}\n`).join(""));
  const random = createHash("sha512");
  const parts: Buffer[] = [text];
  let have = text.length;
  for (let i = 0; have < SIZE; i++) {
    const chunk = Buffer.from(random.copy().update(String(i)).digest("base64"));
    parts.push(chunk);
    have += chunk.length;
  }
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, "big.bin"), Buffer.concat(parts).subarray(0, SIZE));
}

export default async function bench(): Promise<void> {
  const tree = join(OUT, "tree");
  if (!existsSync(join(tree, "big.bin"))) makeInput(tree);
  for (const comp of ["gzip", "xz", "zstd", "lz4"]) {
    const image = join(OUT, `${comp}.sqfs`);
    if (!existsSync(image)) execFileSync("mksquashfs", [tree, image, "-comp", comp, "-quiet", "-no-progress", "-noappend"]);
    let started = performance.now();
    const real = spawnSync("unsquashfs", ["-cat", image, "big.bin"], { maxBuffer: SIZE * 2 });
    const realSeconds = (performance.now() - started) / 1000;
    started = performance.now();
    const source = await openSource(image);
    const fs = await openSquashfs(source);
    const node = await fs.lookup(await fs.root(), "big.bin");
    if (!node) throw new Error("big.bin missing");
    const hash = createHash("sha256");
    for (let at = 0; at < node.stat.size; at += 1 << 20) hash.update(await fs.read(node, at, Math.min(1 << 20, node.stat.size - at)));
    await source.close();
    const oursSeconds = (performance.now() - started) / 1000;
    const same = createHash("sha256").update(real.stdout).digest("hex") === hash.digest("hex");
    const mbs = (s: number) => (SIZE / 1e6 / s).toFixed(0);
    console.log(
      `squashfs ${comp.padEnd(4)}  unsquashfs -cat ${mbs(realSeconds).padStart(4)} MB/s   platter ${mbs(oursSeconds).padStart(4)} MB/s   ratio ${(realSeconds / oursSeconds).toFixed(2)}${same ? "" : "   BYTES DIFFER"}`,
    );
  }
}
