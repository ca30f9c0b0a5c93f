import type { Command } from "commander";
import { capture, type CaptureProgress, type CaptureResult, DEFAULT_MAP_INTERVAL_MS } from "../capture/capture.js";
import type { UsedSummary } from "../capture/domain.js";
import { formatHashLines, parseHashList } from "../capture/hasher.js";
import { knownOutputNames } from "../convert/output-format.js";
import { UsageError } from "../errors.js";
import { formatDuration, formatSize, parseCount, parseSize } from "../util/units.js";
import { printJson, warn } from "./output.js";
import { ProgressLine } from "./progress.js";
import { interruptOnSignals } from "./signals.js";
import { shellQuote } from "../util/shell.js";

interface CaptureFlags {
  raw?: boolean;
  to?: string;
  level?: string;
  threads?: string;
  compress?: string | boolean;
  map?: string;
  hash?: string;
  hashFile?: string;
  sparse?: boolean;
  blockSize: string;
  sectorSize?: string;
  retries: string;
  trim: boolean;
  scrape: boolean;
  skip?: string;
  length?: string;
  maxReadRate?: string;
  mapInterval: string;
  usedOnly?: boolean;
  json?: boolean;
  progress?: boolean;
  quiet?: boolean;
}

const HELP = `
How it copies (GNU ddrescue's algorithm): large reads first; a failing block
is skipped and the copy goes on; then failing blocks are trimmed and scraped
sector by sector (--sector-size), and bad sectors retried --retries times.
Every readable byte lands in DEST; unreadable sectors are zero-filled.
Block devices are read with O_DIRECT, so one bad sector costs one sector.

A SOURCE file that is a compressed or virtual-disk image (.zst .xz .gz
.bz2 .qcow2, found by its magic bytes) is read as the disk it holds, as
\`qemu-img convert -O raw\` gives it; --raw copies the file's own bytes.

SOURCE may also be a stream: - (standard input), a pipe or FIFO, a
character device. It is copied in one pass to its end (or --length); its
size is known only then; it is copied as it is, compressed or not
(decompress it on the way: zstd -dc disk.zst | platter capture - disk.img).
A stream cannot be read again, so a read error
ends the capture (the map says how far it got) and nothing resumes it.

DEST is a file (created or truncated), a block device, a FIFO, or - for
standard output. A DEST named .zst .xz .gz .bz2 or .qcow2 (or --to) is
written as that image while it is copied, as convert writes it. A .qcow2
takes the passes as a raw file does. A compressed DEST takes bytes in order,
as a pipe does (below), and resumes after a crash from its last whole frame;
bad sectors written into it cannot be retried by a later run: to retry
later, capture to raw or .qcow2 and convert at the end. To a stream, bytes must leave in order, so each failing
block is trimmed, scraped and retried before it is written, and --map
cannot resume.

--map FILE keeps a GNU ddrescue mapfile, saved atomically every few seconds
and on exit (also on Ctrl-C / SIGTERM). If FILE exists the capture resumes
and reads only what is unfinished; ddrescue and ddrescuelog read it too.
Offsets in the map, in badRanges and in --skip are SOURCE offsets.

Hashes are computed while copying; after a read error, the part of the
image from that point is hashed by reading DEST back (never SOURCE). With
unreadable sectors, the hashes are those of the zero-filled image.

--no-trim and --no-scrape (ddrescue's -N and -n) stop after the copying
phases, or after trimming: the good areas first, the failing blocks later.

--used-only reads only what the filesystems use (ext2/3/4, FAT, exFAT and
NTFS by their allocation bitmaps or FAT); partition tables, gaps and
unknown partitions in full; a swap partition by its header page. Free space
becomes zeros: holes in a new file. The mapfile leaves it non-tried ('?'):
the same command without --used-only completes it to a full image.

Exit status: 0 complete, 3 some sectors unreadable (or left for later by
--no-trim/--no-scrape; the map says where), 1 failure, 2 usage error,
130/143 interrupted.

Examples:
  platter capture /dev/sdb disk.img --map disk.map --hash sha256
  platter capture /dev/sdb disk.img --map disk.map --retries 3   # later: retry the bad sectors
  platter capture disk.img - --skip 1MiB --length 64MiB | zstd > part.zst
  ssh host 'cat /dev/sdb' | platter capture - disk.img --hash sha256`;

export function registerCapture(program: Command): Command {
  return program
    .command("capture")
    .description("image a drive or file like GNU ddrescue: good areas first, then bad sectors one by one")
    .argument("<source>", "file, block device, or a stream (a pipe, - for stdin) to read")
    .argument("<dest>", "image file, block device, FIFO, or - for stdout")
    .option("--raw", "copy a SOURCE file's bytes as they are, not the disk a compressed or virtual-disk image holds")
    .option("--to <format>", `DEST's format: ${knownOutputNames().join(", ")} (default: from DEST's extension, else raw)`)
    .option("--level <n>", "compression level of a compressed DEST, on the format's own scale")
    .option("--threads <n>", "compression threads of a compressed DEST (default: every core)")
    .option("--compress [type]", "qcow2 DEST: compressed clusters (zlib, or zstd)")
    .option("--map <file>", "GNU ddrescue mapfile: progress and bad sectors; resumes when it exists")
    .option("--hash <list>", "md5, sha1, sha256, sha512, comma-separated, computed while copying")
    .option("--hash-file <file>", "write the hashes for `sha256sum -c` (several: tagged lines, for `cksum -c`)")
    .option("--sparse", "all-zero blocks become holes in a file DEST")
    .option("--block-size <size>", "size of the large reads", "1MiB")
    .option("--sector-size <size>", "unit of trimming, scraping and retrying (default: the source's logical sector size)")
    .option("--retries <n>", "passes over the bad sectors after scraping", "0")
    .option("--no-trim", "leave failing blocks untrimmed for a later run (ddrescue -N)")
    .option("--no-scrape", "leave trimmed blocks unscraped for a later run (ddrescue -n)")
    .option("--skip <size>", "first SOURCE byte to capture (lands at DEST offset 0)")
    .option("--length <size>", "bytes to capture (default: to the end of SOURCE)")
    .option("--max-read-rate <size>", "limit reading to this many bytes per second")
    .option("--map-interval <seconds>", "how often to save the mapfile", String(DEFAULT_MAP_INTERVAL_MS / 1000))
    .option("--used-only", "read only the blocks the filesystems use; free space becomes zeros (holes)")
    .option("--json", "print the summary as JSON on stdout")
    .option("--progress", "show progress even when stderr is not a terminal")
    .option("-q, --quiet", "no progress and no summary")
    .addHelpText("after", HELP)
    .action(async (sourcePath: string, destPath: string, opts: CaptureFlags) => {
      const toStdout = destPath === "-";
      if (toStdout && opts.json) throw new UsageError("--json prints on stdout, which is DEST here; drop one of them");
      const hashSpec = opts.hash ?? (opts.hashFile ? "sha256" : undefined);
      const hashes = hashSpec ? parseHashList(hashSpec) : undefined;
      const mapIntervalSeconds = Number(opts.mapInterval);
      if (!(mapIntervalSeconds > 0)) throw new UsageError(`invalid --map-interval '${opts.mapInterval}': a number of seconds`);
      const progress = new ProgressLine(opts);
      const signals = interruptOnSignals();
      let result: CaptureResult;
      try {
        result = await capture({
          source: sourcePath,
          raw: opts.raw,
          dest: destPath,
          to: opts.to,
          level: opts.level === undefined ? undefined : parseCount(opts.level, "--level", 0),
          threads: opts.threads === undefined ? undefined : parseCount(opts.threads, "--threads", 1),
          writerOptions: opts.compress === undefined ? undefined : { compress: opts.compress === true ? "zlib" : opts.compress },
          mapPath: opts.map,
          hashes,
          hashFile: opts.hashFile,
          sparse: opts.sparse,
          blockSize: parseSize(opts.blockSize, "--block-size"),
          sectorSize: opts.sectorSize === undefined ? undefined : parseSize(opts.sectorSize, "--sector-size"),
          retries: parseCount(opts.retries, "--retries"),
          noTrim: !opts.trim,
          noScrape: !opts.scrape,
          skip: opts.skip === undefined ? undefined : parseSize(opts.skip, "--skip"),
          length: opts.length === undefined ? undefined : parseSize(opts.length, "--length"),
          maxReadRate: opts.maxReadRate === undefined ? undefined : parseSize(opts.maxReadRate, "--max-read-rate"),
          usedOnly: opts.usedOnly,
          mapIntervalMs: mapIntervalSeconds * 1000,
          mapComments: [`Command line: platter ${process.argv.slice(2).map(shellQuote).join(" ")}`],
          signal: signals.signal,
          onProgress: (p) => progress.update(() => describeProgress(p)),
          onWarning: warn,
        });
      } finally {
        progress.done();
        signals.dispose();
      }

      if (opts.json) {
        const { source, dest, size, bytesCopied, bytesUnreadable, badRanges, hashes: digests, seconds, complete } = result;
        printJson({ source, dest, size, bytesCopied, bytesUnreadable, badRanges, hashes: digests, seconds, complete, ...result.used });
      } else if (result.complete && Object.keys(result.hashes).length > 0) {
        // sha256sum's format, so `platter capture ... > img.sha256` checks with `sha256sum -c`.
        (toStdout ? process.stderr : process.stdout).write(formatHashLines(result.hashes, destPath));
      }
      if (!opts.quiet) process.stderr.write(summarize(result, opts.map));
      if (result.interrupted) signals.exitInterrupted();
      else if (result.bytesUnreadable > 0 || result.bytesUnfinished > 0) process.exitCode = 3;
    });
}

function describeProgress(p: CaptureProgress): string {
  if (p.hashing !== undefined) return `hashing DEST: ${formatSize(p.hashing)} / ${formatSize(p.total ?? p.hashing)}`;
  const done = p.rescued + p.unreadable;
  const seconds = (Date.now() - p.startedAt) / 1000;
  const rate = seconds > 0 ? p.bytesRead / seconds : 0;
  const phase = p.phase === "copying" || p.phase === "retrying" ? `${p.phase} (pass ${p.pass})` : p.phase;
  if (p.total === undefined) return `${phase}: ${formatSize(done)} of a stream, ${formatSize(Math.round(rate))}/s`;
  const pct = p.total > 0 ? Math.floor((done / p.total) * 100) : 100;
  const eta = p.phase === "copying" && rate > 0 ? `, ETA ${formatDuration((p.total - done) / rate)}` : "";
  return `${phase}: ${formatSize(done)} / ${formatSize(p.total)} (${pct}%), ${formatSize(Math.round(rate))}/s${eta}, unreadable ${formatSize(p.unreadable)}`;
}

function summarize(r: CaptureResult, mapPath: string | undefined): string {
  const lines: string[] = [];
  const resumed = r.resumed ? " (resumed)" : "";
  const of = r.fromStream && r.interrupted ? "" : ` of ${formatSize(r.size)}`;
  if (r.used) {
    lines.push(...describeUsed(r.used));
    const free = `, ${formatSize(r.used.bytesSkipped)} free space not read`;
    lines.push(`captured ${formatSize(r.used.bytesRead)} used${of}${free} from ${r.source} to ${r.dest} in ${r.seconds} s${resumed}`);
  } else lines.push(`captured ${formatSize(r.bytesCopied)}${of} from ${r.source} to ${r.dest} in ${r.seconds} s${resumed}`);
  if (r.bytesUnreadable > 0) {
    const where = mapPath ? `; ${mapPath} says where` : "";
    lines.push(`unreadable: ${formatSize(r.bytesUnreadable)} (${r.bytesUnreadable} bytes) in ${r.badRanges.length} area(s), zero-filled in the image${where}`);
    if (Object.keys(r.hashes).length > 0) lines.push("the hashes cover the image with the unreadable sectors zero-filled");
  }
  if (!r.interrupted && r.bytesUnfinished > 0) {
    lines.push(`left for a later run: ${formatSize(r.bytesUnfinished)} in failing blocks not yet trimmed or scraped (no hash until then)`);
  }
  if (r.hashedFromDest > 0) lines.push(`hashing read ${formatSize(r.hashedFromDest)} back from ${r.dest} (bytes that reached it out of order)`);
  if (r.interrupted && r.fromStream) {
    // Nothing resumes a stream: it cannot be read again from where it stopped.
    const kept = mapPath ? `; ${mapPath} says it holds the first ${r.bytesCopied} bytes` : r.dest === "-" ? "" : " and was removed";
    lines.push(`interrupted before the end of the stream: ${r.dest} is incomplete${kept}`);
  } else if (r.interrupted) {
    lines.push(
      mapPath
        ? `interrupted: ${mapPath} is saved; run the same command again to resume`
        : `interrupted: ${r.dest} is incomplete${r.dest === "-" ? "" : " and was removed"} (use --map to be able to resume)`,
    );
  }
  return `${lines.join("\n")}\n`;
}

/** One line per partition not read by its used blocks: swap, unknown filesystems, maps that could not be read. */
function describeUsed(used: UsedSummary): string[] {
  return used.partitions
    .filter((p) => p.method !== "used blocks")
    .map((p) => {
      const what = p.number === null ? "the whole source" : `partition ${p.number}`;
      if (p.method === "swap header") return `${what} (swap): contents skipped, its ${formatSize(p.bytesUsed)} header page kept`;
      return `${what} (${p.filesystem ?? "no filesystem platter knows"}): copied in full`;
    });
}
