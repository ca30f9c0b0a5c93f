import type { Command } from "commander";
import { convertImage } from "../convert/convert.js";
import { knownOutputNames } from "../convert/output-format.js";
import { UsageError } from "../errors.js";
import { formatSize, parseCount } from "../util/units.js";
import { printJson, warn } from "./output.js";
import { optimiseLater } from "./optimise-later.js";
import { describeTransfer, ProgressLine } from "./progress.js";
import { interruptOnSignals } from "./signals.js";

interface ConvertFlags {
  to?: string;
  level?: string;
  threads?: string;
  compress?: string | boolean;
  vhdType?: string;
  vhdAlign?: string;
  sparse?: boolean;
  noBacking?: boolean;
  backing?: boolean;
  force?: boolean;
  json?: boolean;
  progress?: boolean;
  quiet?: boolean;
}

export function registerConvert(program: Command): Command {
  return program
    .command("convert")
    .description("convert an image between raw, compressed (gz, xz, zst, bz2) and virtual-disk formats")
    .argument("<source>", "any image platter reads (raw, compressed, virtual disk) or a block device")
    .argument("<dest>", "image file to write (its extension chooses the format unless --to)")
    .option("--to <format>", `output format: ${knownOutputNames().join(", ")} (default: from DEST's extension, else raw)`)
    .option("--level <n>", "compression level, on the format's own scale")
    .option("--threads <n>", "worker threads for compression (default: every core)")
    .option("--compress [type]", "qcow2: compressed clusters (zlib, or zstd)")
    .option("--vhd-type <type>", "vhd: dynamic (default) or fixed")
    .option("--vhd-align <size>", "vhd: round the virtual size up to a multiple of this (1MiB for Azure)")
    .option("--sparse", "raw output: leave zero runs as holes")
    .option("--no-backing", "read a virtual disk's top layer alone, without its backing file")
    .option("--force", "replace DEST if it exists")
    .option("--json", "print a summary as JSON")
    .option("--progress", "show progress even when stderr is not a terminal")
    .option("-q, --quiet", "no progress and no summary")
    .action(async (source: string, dest: string, opts: ConvertFlags) => {
      await optimiseLater();
      const level = opts.level === undefined ? undefined : parseCount(opts.level, "--level", 0);
      const threads = opts.threads === undefined ? undefined : parseCount(opts.threads, "--threads", 1);
      const writerOptions: Record<string, unknown> = {};
      if (opts.compress !== undefined) writerOptions.compress = opts.compress === true ? "zlib" : opts.compress;
      if (opts.vhdType !== undefined) {
        if (opts.vhdType !== "dynamic" && opts.vhdType !== "fixed") throw new UsageError(`--vhd-type ${opts.vhdType}: use dynamic or fixed`);
        writerOptions.vhdType = opts.vhdType;
      }
      if (opts.vhdAlign !== undefined) writerOptions.vhdAlign = opts.vhdAlign;
      const progress = new ProgressLine(opts);
      const started = Date.now();
      const signals = interruptOnSignals();
      try {
        const result = await convertImage({
          source,
          dest,
          to: opts.to,
          level,
          threads,
          sparse: opts.sparse,
          noBacking: opts.backing === false,
          force: opts.force,
          writerOptions,
          signal: signals.signal,
          interruptedBy: () => signals.received,
          onWarning: warn,
          onProgress: (p) => progress.update(() => `converting ${describeTransfer(p.done, p.total, started)}`, p.done === p.total),
        });
        progress.done();
        if (opts.json) printJson(result);
        else if (!opts.quiet) {
          process.stderr.write(
            `converted ${source} (${result.from.join(" over ")}, ${formatSize(result.size)}) to ${dest} (${result.to}, ${formatSize(result.destSize)}) in ${result.seconds.toFixed(2)} s\n`,
          );
        }
      } finally {
        progress.done();
        signals.dispose();
      }
    });
}
