import type { Command } from "commander";
import { runDd, type DdResult } from "../capture/dd.js";
import { parseDdOperands } from "../capture/dd-operands.js";
import { errnoCode } from "../errors.js";
import { describeTransfer, ProgressLine } from "./progress.js";
import { warn } from "./output.js";
import { interruptOnSignals } from "./signals.js";

const HELP = `
Operands (GNU dd's syntax and meaning; count, skip and seek count bs blocks):
  if=FILE        file, block device, or stream (a pipe, a FIFO, a character
                 device, - for standard input) to read (required)
  of=FILE        file, block device or FIFO to write (default: standard output)
  bs=BYTES       block size [512]; suffixes c w b(512) K M G, kB MB GB (x1000), KiB MiB
  count=N        copy N input blocks (from a pipe, a short read is a block too)
  skip=N         skip N input blocks (a stream: read N blocks and drop them)
  seek=N         skip N output blocks
  conv=LIST      noerror    go on after read errors
                 sync       pad every input block to bs (a failed block
                            becomes bs zeros)
                 sparse     seek over all-zero output blocks
                 notrunc    do not truncate of=
                 fdatasync  write the data to the disk before finishing
                 fsync      likewise, with the metadata
  status=LEVEL   progress, noxfer or none
  iflag=LIST     direct     read with O_DIRECT
                 fullblock  gather full input blocks from short reads
  oflag=LIST     direct     write with O_DIRECT

Nothing else is accepted, and nothing is synced unless conv= asks.

of= may be if= itself (any path to it) only to rewrite it in place: with
conv=notrunc, and seek= at or before skip= (or past all that count= reads),
so no byte is overwritten before it is read.

dd's semantics lose every readable byte that shares a block with a bad
sector. When that happens, platter dd probes the failed blocks afterwards
and says on stderr how many readable bytes \`platter capture\` would have kept.
A stream cannot be probed, skipped or read again.

Exit status (as GNU dd): 0 success, also when conv=noerror went on past read
errors; 1 a read error stopped the copy, a write or a sync failed; 2 usage error.`;

export function registerDd(program: Command): Command {
  return program
    .command("dd")
    .description("copy with dd's syntax and semantics (if= of= bs= count= skip= seek= conv= status=)")
    .argument("<operands...>", "dd operands, e.g. if=/dev/sdb of=disk.img bs=1M conv=noerror,sync")
    .addHelpText("after", HELP)
    .action(async (args: string[]) => {
      const ops = parseDdOperands(args);
      const progress = new ProgressLine({ progress: ops.status === "progress", quiet: ops.status !== "progress" });
      const started = Date.now();
      const signals = interruptOnSignals();
      let result: DdResult;
      try {
        result = await runDd(ops, {
          signal: signals.signal,
          onProgress: (done, total) => progress.update(() => describeTransfer(done, total, started)),
          onReadError: (offset, err) => {
            if (ops.status === "none" && ops.conv.noerror) return; // as GNU dd
            progress.done();
            process.stderr.write(`platter: dd: error reading '${ops.input}' at offset ${offset}: ${reason(err)}\n`);
          },
          onWarning: ops.status === "none" ? undefined : warn, // as GNU dd
        });
      } finally {
        progress.done();
        signals.dispose();
      }
      if (ops.status !== "none") process.stderr.write(formatStats(result, ops.status !== "noxfer"));
      reportLoss(result, ops.conv.sync);
      if (result.syncFailure) {
        process.stderr.write(`platter: ${result.syncFailure.message}\n`);
        process.exitCode = 1;
      }
      if (result.interrupted) signals.exitInterrupted();
      else if (result.stoppedAt !== undefined) process.exitCode = 1; // as GNU dd: conv=noerror errors still exit 0
    });
}

function reason(err: unknown): string {
  return errnoCode(err) === "EIO" ? "input/output error" : err instanceof Error ? err.message : String(err);
}

/** dd's closing lines: records in/out, then bytes, time and rate. */
export function formatStats(r: DdResult, transfer: boolean): string {
  const lines = [
    `${r.recordsIn.full}+${r.recordsIn.partial} records in`,
    `${r.recordsOut.full}+${r.recordsOut.partial} records out`,
  ];
  if (transfer) {
    const human = r.bytesOut >= 1000 ? ` (${si(r.bytesOut)}B, ${iec(r.bytesOut)}B)` : "";
    const rate = r.seconds > 0 ? `${si(r.bytesOut / r.seconds)}B/s` : "Infinity B/s";
    lines.push(`${r.bytesOut} bytes${human} copied, ${r.seconds.toPrecision(3)} s, ${rate}`);
  }
  return `${lines.join("\n")}\n`;
}

function scaled(n: number, base: number, units: string[]): string {
  let i = 0;
  while (n >= base && i < units.length - 1) {
    n /= base;
    i++;
  }
  return `${n < 10 && i > 0 ? n.toFixed(1) : Math.round(n)} ${units[i]}`;
}
const si = (n: number) => scaled(n, 1000, ["", "k", "M", "G", "T", "P"]);
const iec = (n: number) => scaled(n, 1024, ["", "Ki", "Mi", "Gi", "Ti", "Pi"]);

/** One line saying what dd semantics lost that `platter capture` would have kept. */
function reportLoss(r: DdResult, sync: boolean): void {
  if (r.fromStream && r.failedBlocks.length > 0) {
    warn(
      r.stoppedAt !== undefined
        ? `dd stopped at the read error at offset ${r.stoppedAt} of the stream; a stream cannot be read again, so nothing can retry it`
        : `${r.failedBlocks.length} read error(s) in the stream: a stream cannot be skipped past or read again, so nothing can retry them`,
    );
  } else if (r.stoppedAt !== undefined) {
    warn(
      `dd stopped at the read error at offset ${r.stoppedAt}: ${r.bytesNotCopied} bytes of input were not copied ` +
        "(`platter capture` goes on past read errors and keeps every readable sector)",
    );
  } else if (r.readableInFailedBlocks !== undefined) {
    const skipped = r.failedBlocks.reduce((n, [, len]) => n + len, 0);
    const how = sync ? "zero-filled" : "left out of the output";
    warn(
      `${r.failedBlocks.length} read error(s): dd skipped ${skipped} bytes (${how}), of which ${r.readableInFailedBlocks} ` +
        "were readable; `platter capture` would have kept them",
    );
  }
  if (r.shiftedAt !== undefined && r.shiftBytes) {
    warn(
      `from input offset ${r.shiftedAt} on, the output is shifted by ${r.shiftBytes} bytes (a short read before a read ` +
        "error: dd's conv=sync misalignment; iflag=direct avoids it, `platter capture` never shifts)",
    );
  }
}
