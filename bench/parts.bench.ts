/**
 * `parts` on a 2 TiB sparse disk image with a GPT (an ESP, an ext4 and a
 * 2 TiB empty partition): the CLI against `sfdisk --json` plus `blkid -p`
 * on each partition (what a user runs for the same answer), whole processes
 * in turns (bench/lib/whole-process.ts, BENCH_RUNS each, default 5, warm
 * cache, median and spread); in process, the best time of reportPartitions
 * and the bytes it reads, counted through a CountingSource.
 */
import { execFileSync } from "node:child_process";
import { existsSync, mkdirSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { openSource } from "../src/io/file-source.js";
import { CountingSource } from "../src/io/counting-source.js";
import { reportPartitions } from "../src/image/partition-report.js";
import { compareInTurns, report, type Command } from "./lib/whole-process.js";

const OUT = fileURLToPath(new URL("out/parts/", import.meta.url));
const CLI = fileURLToPath(new URL("../dist/cli/main.js", import.meta.url));
const RUNS = Number(process.env.BENCH_RUNS ?? 5);

function makeImage(path: string): void {
  mkdirSync(OUT, { recursive: true });
  execFileSync("truncate", ["-s", "2T", path]);
  execFileSync("sgdisk", ["-o", "-n", "1:2048:+256M", "-t", "1:ef00", "-n", "2:0:+1G", "-t", "2:8300", "-n", "3:0:0", "-t", "3:8300", path], {
    stdio: "ignore",
  });
  execFileSync("mkfs.vfat", ["-F", "32", "-n", "ESP", "--offset", "2048", path, String(256 * 1024)], { stdio: "ignore" });
  const p2 = 2048 + 256 * 2048;
  execFileSync("mkfs.ext4", ["-q", "-F", "-L", "bench", "-E", `offset=${p2 * 512}`, path, "1G"], { stdio: "ignore" });
}

function best(times: number[]): number {
  return Math.min(...times);
}

export default async function bench(): Promise<void> {
  const image = join(OUT, "2tib-gpt.img");
  if (!existsSync(image)) makeImage(image);

  const source = new CountingSource(await openSource(image));
  const inProcess: number[] = [];
  let partitions = 0;
  for (let i = 0; i < RUNS; i++) {
    source.bytesRead = 0;
    source.reads = 0;
    const started = performance.now();
    partitions = (await reportPartitions(source)).partitions.length;
    inProcess.push((performance.now() - started) / 1000);
  }
  await source.close();

  const sfdiskJson = JSON.parse(execFileSync("sfdisk", ["--json", image], { encoding: "utf8" })) as {
    partitiontable: { partitions: Array<{ start: number; size: number }> };
  };
  // What a user runs for the same answer: the table, then each partition's filesystem (blkid exits 2 when it finds none).
  const blkids = sfdiskJson.partitiontable.partitions.map((p) => `{ blkid -p -O ${p.start * 512} -S ${p.size * 512} ${image} || [ $? = 2 ]; }`);
  const tools: Command = { label: `sfdisk --json + blkid -p x${partitions}`, argv: [], shell: [`sfdisk --json ${image}`, ...blkids].join(" && ") };
  const cli: Command = { label: "platter parts --json", argv: [process.execPath, CLI, "parts", image, "--json"] };
  report(
    `parts 2 TiB GPT (${partitions} partitions)`,
    compareInTurns(cli, tools, { runs: RUNS }),
    `(in process ${(best(inProcess) * 1000).toFixed(1)} ms, read ${(source.bytesRead / 1024).toFixed(0)} KiB in ${source.reads} reads)`,
  );
}
