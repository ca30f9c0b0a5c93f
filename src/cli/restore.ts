import { execFileSync } from "node:child_process";
import { createInterface } from "node:readline/promises";
import type { Command } from "commander";
import { UsageError } from "../errors.js";
import { restoreImage, type RestoreResult } from "../restore/restore.js";
import type { TargetDescription } from "../restore/target-device.js";
import { formatSize } from "../util/units.js";
import { printJson, warn } from "./output.js";
import { describeTransfer, ProgressLine } from "./progress.js";
import { interruptOnSignals } from "./signals.js";

interface RestoreFlags {
  verify?: boolean;
  yes?: boolean;
  discard?: boolean;
  force?: boolean;
  json?: boolean;
  progress?: boolean;
  quiet?: boolean;
}

export function registerRestore(program: Command): Command {
  return program
    .command("restore")
    .description("write an image back to a disk (or a file): only its data, with guards against the wrong disk")
    .argument("<image>", "any image platter reads (raw, compressed, virtual disk)")
    .argument("<target>", "the block device (or image file) to overwrite")
    .option("--verify", "read TARGET back, past the page cache, and compare what was written")
    .option("--discard", "discard TARGET first (TRIM), then skip the image's zero runs if it reads back as zeros")
    .option("-y, --yes", "overwrite a block device without asking")
    .option("--force", "replace an existing file TARGET")
    .option("--json", "print a summary as JSON")
    .option("--progress", "show progress even when stderr is not a terminal")
    .option("-q, --quiet", "no progress and no summary")
    .action(async (image: string, target: string, opts: RestoreFlags) => {
      const progress = new ProgressLine(opts);
      const started = Date.now();
      const signals = interruptOnSignals();
      try {
        const result = await restoreImage({
          image,
          target,
          verify: opts.verify,
          discard: opts.discard,
          force: opts.force,
          confirm: opts.yes ? undefined : (t) => confirmOnTerminal(t, image),
          signal: signals.signal,
          interruptedBy: () => signals.received,
          onWarning: warn,
          onProgress: (p) => progress.update(() => `${p.phase} ${describeTransfer(p.done, p.total, started)}`, p.done === p.total),
          beforeVerify: testHook(),
        });
        progress.done();
        if (opts.json) printJson(result);
        else if (!opts.quiet) process.stderr.write(summary(result));
      } finally {
        progress.done();
        signals.dispose();
      }
    });
}

function summary(r: RestoreResult): string {
  const skipped = r.bytesSkipped > 0 ? `, ${formatSize(r.bytesSkipped)} of zeros skipped` : "";
  const lines = [
    `restored ${r.image} (${r.from.join(" over ")}, ${formatSize(r.imageSize)}) to ${r.target} in ${r.seconds.toFixed(2)} s: ${formatSize(r.bytesWritten)} written${skipped}`,
  ];
  if (r.gptRelocated) lines.push(`moved the backup GPT to the end of ${r.target} (${formatSize(r.targetSize)})`);
  if (r.verified) lines.push(`verified: ${formatSize(r.bytesWritten)} read back from ${r.target}, identical`);
  return `${lines.join("\n")}\n`;
}

/** Show what is about to be destroyed and wait for "yes"; refuse at once where nobody can answer. */
async function confirmOnTerminal(t: TargetDescription, image: string): Promise<boolean> {
  if (!process.stdin.isTTY || !process.stderr.isTTY) {
    throw new UsageError(`refusing to overwrite ${t.path} without confirmation: no terminal to ask on; add --yes`);
  }
  const lines = [`${t.path}: ${formatSize(t.size)} (${t.size} bytes)`];
  if (t.model) lines.push(`  model:  ${t.model}`);
  if (t.serial) lines.push(`  serial: ${t.serial}`);
  if (t.backingFile) lines.push(`  loop device over ${t.backingFile}`);
  lines.push(t.partitions.length ? `  partitions: ${t.partitions.map((p) => `${p.name} (${formatSize(p.size)})`).join(", ")}` : "  no partitions");
  process.stderr.write(`${lines.join("\n")}\nEverything on ${t.path} will be replaced by ${image}.\n`);
  const rl = createInterface({ input: process.stdin, output: process.stderr });
  try {
    return (await rl.question("Type yes to overwrite it: ")).trim().toLowerCase() === "yes";
  } finally {
    rl.close();
  }
}

/**
 * PLATTER_TEST_BEFORE_VERIFY: a shell command run between the write and the
 * read-back, so a test can change the device behind platter's back and see
 * --verify catch it. Not for anything else.
 */
function testHook(): (() => void) | undefined {
  const command = process.env.PLATTER_TEST_BEFORE_VERIFY;
  return command ? () => void execFileSync("sh", ["-c", command], { stdio: "inherit" }) : undefined;
}
