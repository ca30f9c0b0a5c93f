/**
 * partclone images against partclone itself, whole processes as users run
 * them, on a 512 MiB ext4 holding 256 MiB of files (half text, half random)
 * cloned by partclone.ext4 -c (CRC32 every 256 blocks), plain and piped
 * through gzip as Clonezilla saves it:
 *
 *   ptcl -> raw        platter convert --sparse   vs  partclone.restore -W
 *   ptcl.gz -> raw     platter convert --sparse   vs  gzip -dc | partclone.restore -W
 *   one file back      platter cat ptcl.gz FILE   vs  gzip -dc | partclone.restore -W, then debugfs cat
 *                      (what users of partclone must do today to get one file)
 *
 * Commands run in turns (A B A B...), warm cache, outputs removed before
 * each run (untimed). Ratio = partclone's median / platter's: above 1,
 * platter is faster. On a machine shared with other work the ratio swings
 * with the load; the spread is printed beside each median.
 */
import { spawnSync } from "node:child_process";
import { createCipheriv } from "node:crypto";
import { existsSync, mkdirSync, rmSync, writeFileSync } from "node:fs";
import { availableParallelism, loadavg } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { compareInTurns, report } from "./lib/whole-process.js";

const OUT = fileURLToPath(new URL("out/partclone/", import.meta.url));
const CLI = fileURLToPath(new URL("../dist/cli/main.js", import.meta.url));
const FS_MIB = 512;
const FILE_MIB = 16;
const FILES = 16;

/** Deterministic pseudo-random bytes (AES-CTR over zeros). */
function randomBytes(length: number, seed: number): Buffer {
  const key = Buffer.alloc(16);
  key.writeUInt32LE(seed);
  return createCipheriv("aes-128-ctr", key, Buffer.alloc(16)).update(Buffer.alloc(length));
}

function run(argv: string[], shell = false): void {
  const r = shell ? spawnSync("sh", ["-c", argv[0] as string], { stdio: ["ignore", "ignore", "pipe"] }) : spawnSync(argv[0] as string, argv.slice(1), { stdio: ["ignore", "ignore", "pipe"] });
  if (r.status !== 0) throw new Error(`${argv.join(" ")}: ${r.stderr}`);
}

/** The ext4 (made by mkfs.ext4 -d from a tree of text and random files), its partclone image, and that image gzipped. */
function makeImages(img: string, ptcl: string, gz: string): void {
  const tree = join(OUT, "tree");
  rmSync(tree, { recursive: true, force: true });
  mkdirSync(tree, { recursive: true });
  let text = "";
  for (let i = 0; text.length < FILE_MIB << 20; i++) text += `2026-11-30T12:00:${String(i % 60).padStart(2, "0")} host kernel: [${i}] usb 1-1: new device ${i % 128}\n`;
  for (let i = 0; i < FILES; i++) writeFileSync(join(tree, `file-${i}.bin`), i % 2 ? randomBytes(FILE_MIB << 20, i) : text.slice(0, FILE_MIB << 20));
  run(["truncate", "-s", `${FS_MIB}M`, img]);
  run(["mkfs.ext4", "-q", "-F", "-E", "nodiscard", "-d", tree, img]);
  rmSync(tree, { recursive: true, force: true });
  run(["partclone.ext4", "-c", "-s", img, "-o", ptcl, "-q", "-L", join(OUT, "partclone.log")]);
  run([`gzip -c ${ptcl} > ${gz}`], true);
}

export default async function bench(): Promise<void> {
  mkdirSync(OUT, { recursive: true });
  const img = join(OUT, "ext4.img");
  const ptcl = join(OUT, "ext4.ptcl");
  const gz = join(OUT, "ext4.ptcl.gz");
  if (!existsSync(gz)) makeImages(img, ptcl, gz);
  const a = join(OUT, "a.out");
  const b = join(OUT, "b.out");
  const cleanA = () => rmSync(a, { force: true });
  const cleanB = () => rmSync(b, { force: true });
  const log = join(OUT, "partclone.log");
  const restore = (source: string) => `partclone.restore -s ${source} -O ${b} -W -q -L ${log}`;
  const load = loadavg().map((l) => l.toFixed(1)).join(" ");
  console.log(`partclone (${availableParallelism()} cores, load average ${load}): ${FS_MIB} MiB ext4, ${FILES * FILE_MIB} MiB of files, half text, half random`);

  report(
    "ptcl -> raw",
    compareInTurns(
      { label: "platter convert --sparse", argv: [process.execPath, CLI, "convert", ptcl, a, "--sparse", "--force", "--quiet"], setup: cleanA },
      { label: "partclone.restore -W", argv: [], shell: restore(ptcl), setup: cleanB },
      { runs: 5 },
    ),
  );
  report(
    "ptcl.gz -> raw",
    compareInTurns(
      { label: "platter convert --sparse", argv: [process.execPath, CLI, "convert", gz, a, "--sparse", "--force", "--quiet"], setup: cleanA },
      { label: "gzip -dc | partclone.restore -W", argv: [], shell: `gzip -dc ${gz} | ${restore("-")}`, setup: cleanB },
      { runs: 3 },
    ),
  );
  report(
    "one 16 MiB file from ptcl.gz",
    compareInTurns(
      { label: "platter cat", argv: [], shell: `${process.execPath} ${CLI} cat ${gz} /file-7.bin > ${a}`, setup: cleanA },
      { label: "restore, then debugfs cat", argv: [], shell: `gzip -dc ${gz} | ${restore("-")} && debugfs -R 'cat /file-7.bin' ${b} > ${b}.file 2>/dev/null; rm -f ${b}.file`, setup: cleanB },
      { runs: 3 },
    ),
  );
  cleanA();
  cleanB();
}
