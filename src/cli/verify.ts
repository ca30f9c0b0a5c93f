import type { Command } from "commander";
import { byteHex, compareImages, type CompareResult } from "../restore/compare.js";
import { formatSize } from "../util/units.js";
import { printJson, warn } from "./output.js";
import { describeTransfer, ProgressLine } from "./progress.js";
import { interruptOnSignals } from "./signals.js";
import { writeStdout } from "./stdout.js";

interface VerifyFlags {
  json?: boolean;
  progress?: boolean;
  quiet?: boolean;
}

export function registerVerify(program: Command): Command {
  return program
    .command("verify")
    .description("compare an image with a disk or another image, byte for byte (exit 1 when they differ)")
    .argument("<image>", "any image platter reads (raw, compressed, virtual disk)")
    .argument("<target>", "the disk or image to compare it with (any format too)")
    .option("--json", "print the result as JSON")
    .option("--progress", "show progress even when stderr is not a terminal")
    .option("-q, --quiet", "no progress; the exit status alone tells")
    .action(async (image: string, target: string, opts: VerifyFlags) => {
      const progress = new ProgressLine(opts);
      const started = Date.now();
      const signals = interruptOnSignals();
      try {
        const result = await compareImages(image, target, {
          signal: signals.signal,
          interruptedBy: () => signals.received,
          onWarning: warn,
          onProgress: (done, total) => progress.update(() => `comparing ${describeTransfer(done, total, started)}`, done === total),
        });
        progress.done();
        if (opts.json) printJson(result);
        else if (!opts.quiet) writeStdout(report(result));
        if (!result.equal) process.exitCode = 1;
      } finally {
        progress.done();
        signals.dispose();
      }
    });
}

function report(r: CompareResult): string {
  const lines: string[] = [];
  if (r.differingBytes > 0) {
    lines.push(`${r.image} and ${r.target} differ: ${r.differingBytes} byte(s) of ${r.compared} compared`);
    lines.push("    offset  image  target");
    for (const d of r.differences) lines.push(`${String(d.offset).padStart(10)}   ${byteHex(d.image)}    ${byteHex(d.target)}`);
    if (r.differingBytes > r.differences.length) lines.push(`  … and ${r.differingBytes - r.differences.length} more`);
  } else {
    lines.push(`${r.image} and ${r.target} are identical over ${formatSize(r.compared)} (${r.compared} bytes)`);
  }
  if (r.imageSize !== r.targetSize) {
    const [longer, shorter] = r.targetSize > r.imageSize ? [r.target, r.image] : [r.image, r.target];
    const extra = Math.abs(r.targetSize - r.imageSize);
    const note = r.equal ? ", not compared (a disk is bigger than its image)" : "";
    lines.push(`sizes differ: ${longer} is ${extra} byte(s) longer than ${shorter} (${r.imageSize} and ${r.targetSize} bytes)${note}`);
  }
  return `${lines.join("\n")}\n`;
}
