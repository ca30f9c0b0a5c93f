import type { Command } from "commander";
import { type ExtractProgress, extractTree } from "../fs/extract/index.js";
import { escapeName } from "../fs/names.js";
import { resolvePath } from "../fs/path.js";
import { formatSize } from "../util/units.js";
import { openImageFilesystem } from "./image-fs.js";
import { optimiseLater } from "./optimise-later.js";
import { warn } from "./output.js";
import { describeTransfer, ProgressLine } from "./progress.js";
import { interruptOnSignals } from "./signals.js";
import { writeStdout } from "./stdout.js";

interface ExtractFlags {
  output: string;
  part?: string;
  force?: boolean;
  progress?: boolean;
  quiet?: boolean;
}

export function registerExtract(program: Command): Command {
  return program
    .command("extract")
    .description("copy files out of a filesystem image into a folder (modes, mtimes, links kept; never writes outside it)")
    .argument("<image>", "image file or block device")
    .argument("[path]", "folder (its contents) or file inside the filesystem", "/")
    .requiredOption("-o, --output <dir>", "destination folder (created if missing; must be empty unless --force)")
    .option("--part <n>", "partition number (Linux numbering)")
    .option("--force", "extract into a folder that is not empty, replacing files in the way")
    .option("--progress", "show progress even when stderr is not a terminal")
    .option("-q, --quiet", "no progress and no summary")
    .action(async (image: string, path: string, opts: ExtractFlags) => {
      await optimiseLater();
      const opened = await openImageFilesystem(image, opts.part);
      const signals = interruptOnSignals();
      try {
        const start = await resolvePath(opened.fs, path, { followFinal: path.endsWith("/") || path === "/" });
        const progress = new ProgressLine(opts);
        const started = Date.now();
        const render = (p: ExtractProgress) => () =>
          `extracting ${p.files}/${p.totalFiles} files, ${describeTransfer(p.bytes, p.totalBytes, started)}`;
        let last: ExtractProgress | undefined;
        const summary = await extractTree(opened.fs, start, opts.output, {
          force: opts.force,
          signal: signals.signal,
          onWarning: (m) => {
            progress.done();
            warn(m);
          },
          onProgress: (p) => {
            last = p;
            progress.update(render(p));
          },
        });
        if (last && !summary.interrupted) progress.update(render(last), true);
        progress.done();
        const count = (n: number, one: string, many = `${one}s`) => `${n} ${n === 1 ? one : many}`;
        const parts = [count(summary.files, "file"), count(summary.dirs, "folder"), count(summary.symlinks, "symlink")];
        if (summary.hardlinks) parts.push(`${count(summary.hardlinks, "hard link")} among the files`);
        if (summary.specials) parts.push(count(summary.specials, "fifo or device", "fifos and devices"));
        if (summary.skipped) parts.push(`${summary.skipped} skipped`);
        const described = `${parts.join(", ")} (${formatSize(summary.bytes)}) into ${escapeName(opts.output)}`;
        if (summary.interrupted) {
          process.stderr.write(`platter: interrupted: extracted ${described}; files being written were removed\n`);
          process.exitCode = 128 + (signals.received === "SIGTERM" ? 15 : 2);
        } else if (!opts.quiet) {
          writeStdout(`extracted ${described}\n`);
        }
      } finally {
        signals.dispose();
        await opened.close();
      }
    });
}
