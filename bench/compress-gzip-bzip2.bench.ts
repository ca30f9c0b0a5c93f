/**
 * platter's gzip and bzip2 writers and readers against pigz, gzip and
 * pbzip2, on the same 1 GiB disk-like image (1 MiB regions: 35% zeros, 45%
 * log-like text, 20% random bytes; generated once into bench/out/compress/).
 *
 * Each case runs its commands in turns (A B A B ...; BENCH_ROUNDS, default
 * 3), each as a child process under GNU time (wall seconds, CPU seconds,
 * peak RSS), the page cache warm (every tool reads the same cached input).
 * Printed: the median and the spread (min..max) of each, the ratio of the
 * medians, and whether it meets the goal:
 *  - .gz write >= 1.0x pigz -6 and >= 1.8x gzip -6 throughput; size within 5% of theirs;
 *  - .bz2 write >= 1.0x pbzip2 -9; size within 5%;
 *  - reading the .gz / .bz2 platter wrote >= 1.0x pigz -d / pbzip2 -d on the same file;
 *  - 10,000 random 4 KiB reads of the platter .gz, one reader: >= 1,000 reads/s.
 * The machine's cores may be shared: CPU seconds are printed beside wall
 * seconds, and wall-clock ratios are only as steady as the machine.
 *
 * platter runs as `node --import tsx bench/compress-gzip-bzip2.bench.ts
 * <job>` (this file, in runner mode), so its times include node's startup
 * and tsx's compile (~0.5 s).
 */
import { execFileSync, spawnSync } from "node:child_process";
import { closeSync, existsSync, mkdirSync, openSync, rmSync, statSync, writeSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

const ROOT = fileURLToPath(new URL("..", import.meta.url));
const OUT = join(ROOT, "bench", "out", "compress");
const THIS = fileURLToPath(import.meta.url);
const MiB = 1 << 20;
const IMAGE_MIB = 1024;
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);

/** The disk-like image: deterministic xorshift choices, so every run compresses the same bytes. */
function makeImage(path: string): void {
  const words = "the of and to in is was for on that with as by at from kernel disk block inode partition sector file data error warning info debug user system network packet device mount read write cache buffer page journal commit transaction".split(" ");
  let x = 0x2545f491;
  const next = () => {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    return x;
  };
  const text = (): Buffer => {
    const lines: string[] = [];
    let length = 0;
    while (length < MiB) {
      const n = 4 + (next() % 10);
      const body = Array.from({ length: n }, () => words[next() % words.length]).join(" ");
      const line = `2024-01-${String(1 + (next() % 28)).padStart(2, "0")} ${String(next() % 24).padStart(2, "0")}:${String(next() % 60).padStart(2, "0")} host${next() % 16} ${words[next() % words.length]}[${next() % 65536}]: ${body} ${next() % 1000000}\n`;
      lines.push(line);
      length += line.length;
    }
    return Buffer.from(lines.join("")).subarray(0, MiB);
  };
  const random = (): Buffer => {
    const out = Buffer.allocUnsafe(MiB);
    for (let i = 0; i < MiB; i += 4) out.writeUInt32LE(next(), i);
    return out;
  };
  const fd = openSync(path, "w");
  for (let i = 0; i < IMAGE_MIB; i++) {
    const kind = next() % 20;
    writeSync(fd, kind < 7 ? Buffer.alloc(MiB) : kind < 16 ? text() : random());
  }
  closeSync(fd);
}

interface Run {
  wall: number;
  cpu: number;
  rssMiB: number;
  stdout: string;
}

/** `shell` under GNU time. */
function timed(shell: string): Run {
  const r = spawnSync("/usr/bin/time", ["-f", "@@ %e %U %S %M", "bash", "-c", shell], { encoding: "utf8", maxBuffer: 64 * MiB });
  const m = /@@ ([\d.]+) ([\d.]+) ([\d.]+) (\d+)\s*$/.exec(r.stderr ?? "");
  if (r.status !== 0 || !m) throw new Error(`${shell} failed (${r.status}): ${r.stderr}`);
  return { wall: Number(m[1]), cpu: Number(m[2]) + Number(m[3]), rssMiB: Number(m[4]) / 1024, stdout: r.stdout };
}

const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)] as number;
const verdicts: string[] = [];

/** Run the commands in turns, ROUNDS times; print each one's median and spread. */
function inTurns(what: string, bytes: number, commands: Record<string, string>, before?: () => void): Record<string, Run[]> {
  const runs: Record<string, Run[]> = Object.fromEntries(Object.keys(commands).map((k) => [k, []]));
  for (let round = 0; round < ROUNDS; round++) {
    for (const [name, shell] of Object.entries(commands)) {
      before?.();
      runs[name]?.push(timed(shell));
    }
  }
  console.log(`\n${what}`);
  for (const [name, list] of Object.entries(runs)) {
    const walls = list.map((r) => r.wall);
    const m = median(walls);
    console.log(
      `  ${name.padEnd(22)} ${m.toFixed(2).padStart(7)} s (${Math.min(...walls).toFixed(2)}..${Math.max(...walls).toFixed(2)})  ${(bytes / MiB / m).toFixed(0).padStart(5)} MiB/s  cpu ${median(list.map((r) => r.cpu)).toFixed(2).padStart(6)} s  rss ${median(list.map((r) => r.rssMiB)).toFixed(0).padStart(4)} MiB`,
    );
  }
  return runs;
}

function goal(label: string, value: number, target: number, higherIsBetter = true): void {
  const ok = higherIsBetter ? value >= target : value <= target;
  verdicts.push(`${ok ? "PASS" : "FAIL"} ${label}: ${value.toFixed(2)} (goal ${higherIsBetter ? ">=" : "<="} ${target})`);
}

const speedup = (runs: Record<string, Run[]>, ours: string, theirs: string) =>
  median((runs[theirs] as Run[]).map((r) => r.wall)) / median((runs[ours] as Run[]).map((r) => r.wall));

function runner(job: string): string {
  return `${process.execPath} --import tsx ${THIS} ${job}`;
}

export default async function compressBench(): Promise<void> {
  console.log("\n== gzip and bzip2: platter's writers and readers against pigz, gzip and pbzip2, 1 GiB disk-like image");
  for (const tool of ["gzip", "pigz", "pbzip2", "/usr/bin/time"]) {
    if (spawnSync("bash", ["-c", `command -v ${tool}`]).status !== 0) throw new Error(`needs ${tool}`);
  }
  mkdirSync(OUT, { recursive: true });
  const image = join(OUT, "disk-1g.img");
  if (!existsSync(image) || statSync(image).size !== IMAGE_MIB * MiB) makeImage(image);
  execFileSync("bash", ["-c", `cat ${image} > /dev/null`]); // into the page cache for everyone
  const bytes = IMAGE_MIB * MiB;
  const file = (name: string) => join(OUT, name);
  const size = (name: string) => statSync(file(name)).size;

  const gz = inTurns(".gz write, level 6", bytes, {
    "platter .gz": `${runner(`write-gz ${image} ${file("platter.gz")}`)}`,
    "pigz -6": `pigz -6 -c ${image} > ${file("pigz.gz")}`,
    "gzip -6": `gzip -6 -c ${image} > ${file("gzip.gz")}`,
  });
  goal(".gz write throughput / pigz -6", speedup(gz, "platter .gz", "pigz -6"), 1.0);
  goal(".gz write throughput / gzip -6", speedup(gz, "platter .gz", "gzip -6"), 1.8);
  goal(".gz size / pigz -6 size", size("platter.gz") / size("pigz.gz"), 1.05, false);
  goal(".gz size / gzip -6 size", size("platter.gz") / size("gzip.gz"), 1.05, false);

  const bz = inTurns(".bz2 write, level 9", bytes, {
    "platter .bz2": `${runner(`write-bz2 ${image} ${file("platter.bz2")}`)}`,
    "pbzip2 -9": `pbzip2 -9 -c ${image} > ${file("pbzip2.bz2")}`,
  });
  goal(".bz2 write throughput / pbzip2 -9", speedup(bz, "platter .bz2", "pbzip2 -9"), 1.0);
  goal(".bz2 size / pbzip2 -9 size", size("platter.bz2") / size("pbzip2.bz2"), 1.05, false);

  const gunzip = inTurns("reading platter's .gz whole", bytes, {
    "platter read": runner(`read gzip ${file("platter.gz")}`),
    "pigz -d": `pigz -d -c ${file("platter.gz")} > /dev/null`,
  });
  goal("reading the .gz / pigz -d", speedup(gunzip, "platter read", "pigz -d"), 1.0);
  const bunzip = inTurns("reading platter's .bz2 whole", bytes, {
    "platter read": runner(`read bzip2 ${file("platter.bz2")}`),
    "pbzip2 -d": `pbzip2 -d -c ${file("platter.bz2")} > /dev/null`,
  });
  goal("reading the .bz2 / pbzip2 -d", speedup(bunzip, "platter read", "pbzip2 -d"), 1.0);

  // For the record: foreign single streams, where platter first indexes with one pass.
  inTurns("for the record: reading gzip -6's single stream (index pass included)", bytes, {
    "platter read": runner(`read gzip ${file("gzip.gz")}`),
    "pigz -d": `pigz -d -c ${file("gzip.gz")} > /dev/null`,
  });

  const random = inTurns("10,000 random 4 KiB reads of platter's .gz", bytes, {
    "one reader": runner(`random ${file("platter.gz")} 1`),
    "four readers": runner(`random ${file("platter.gz")} 4`),
  });
  const rate = (name: string) => median((random[name] as Run[]).map((r) => Number(/reads\/s (\d+)/.exec(r.stdout)?.[1] ?? 0)));
  console.log(`  reads/s (median, open excluded): one reader ${rate("one reader")}, four readers ${rate("four readers")}`);
  goal("random 4 KiB reads/s, one reader", rate("one reader"), 1000);

  console.log("");
  for (const v of verdicts) console.log(v);
  for (const name of ["platter.gz", "pigz.gz", "gzip.gz", "platter.bz2", "pbzip2.bz2"]) rmSync(file(name), { force: true });
}

/** Runner mode: one job, in a process of its own. */
async function runJob(args: string[]): Promise<void> {
  const { FileSource } = await import("../src/io/file-source.js");
  const [job, a, b] = args;
  const formats = { gzip: (await import("../src/container/gzip/index.js")).gzipFormat, bzip2: (await import("../src/container/bzip2/index.js")).bzip2Format };
  const writers = { "write-gz": (await import("../src/container/gzip/index.js")).gzipWriter, "write-bz2": (await import("../src/container/bzip2/index.js")).bzip2Writer };
  const context = { openRelated: async () => Promise.reject(new Error("no related files")) };
  if (job === "write-gz" || job === "write-bz2") {
    const source = await FileSource.open(a as string);
    const sink = await writers[job].create(b as string, { size: source.size });
    const buf = Buffer.allocUnsafe(4 * MiB);
    for (let at = 0; at < source.size; at += buf.length) {
      const n = Math.min(buf.length, source.size - at);
      await sink.write(at, await source.read(at, n, buf));
    }
    await sink.close();
    await source.close();
  } else if (job === "read") {
    const file = await FileSource.open(b as string);
    const image = await formats[a as "gzip" | "bzip2"].open(file, context);
    const buf = Buffer.allocUnsafe(4 * MiB);
    for (let at = 0; at < image.size; at += buf.length) await image.read(at, Math.min(buf.length, image.size - at), buf);
    await file.close();
  } else if (job === "random") {
    const file = await FileSource.open(a as string);
    const image = await formats.gzip.open(file, context);
    const readers = Number(b);
    let x = 12345;
    let left = 10_000;
    const started = performance.now();
    await Promise.all(
      Array.from({ length: readers }, async () => {
        const buf = Buffer.allocUnsafe(4096);
        while (left-- > 0) {
          x = (Math.imul(x, 1103515245) + 12345) >>> 0;
          await image.read(Math.floor((x / 2 ** 32) * (image.size / 4096)) * 4096, 4096, buf);
        }
      }),
    );
    console.log(`reads/s ${Math.round(10_000 / ((performance.now() - started) / 1000))}`);
    await file.close();
  } else {
    throw new Error(`unknown job ${job}`);
  }
}

if (process.argv[1] === THIS && process.argv.length > 2) await runJob(process.argv.slice(2));
